"""Arbitrary or hostile bytes into every decoder raise only Lwm2mFormatError: no other exception, no
hang, bounded memory."""

from __future__ import annotations

import json
import time
import tracemalloc

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.lwm2m import (
    ROOT,
    ContentFormat,
    ErrorKind,
    Lwm2mFormatError,
    ObjLink,
    Path,
    Record,
    ResourceType,
    decode,
    encode,
)
from translator.lwm2m.formats import SUPPORTED_FORMATS

from .support import MULTI_RID, SINGLE_RID, TEST_OBJECT, registry, vectors_if_present

FORMATS = sorted(SUPPORTED_FORMATS)
BASES = [
    ROOT,
    Path(3),
    Path(3, 0),
    Path(3, 0, 6),
    Path(3, 0, 6, 1),
    Path(3303, 0, 5700),
    Path(3, 0, 13),
    Path(3, 0, 22, 0),
    Path(TEST_OBJECT, 0),
    *(Path(TEST_OBJECT, 0, rid) for rid in SINGLE_RID.values()),
    *(Path(TEST_OBJECT, 0, rid, 1) for rid in MULTI_RID.values()),
]
bases = st.sampled_from(BASES)
lookups = st.sampled_from([None, registry()])


def decode_or_typed_error(cf: int, payload: bytes, base: Path, lookup: object) -> None:
    try:
        decode(cf, payload, base_path=base, registry=lookup, now=1e9)  # type: ignore[arg-type]
    except Lwm2mFormatError as exc:
        assert exc.kind is ErrorKind.BAD_REQUEST
        assert exc.reason


@pytest.mark.parametrize("cf", FORMATS)
@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=200), base=bases, lookup=lookups)
def test_arbitrary_bytes(cf: int, payload: bytes, base: Path, lookup: object) -> None:
    decode_or_typed_error(cf, payload, base, lookup)


# Structured inputs reach past the first parse error.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(),
    st.text(alphabet="/0123456789:abvnst_", max_size=12),
    st.binary(max_size=8),
)
labels = st.one_of(st.integers(-8, 9), st.sampled_from(["vlo", "bn", "n", "v", "vs", "x_", "t"]))
cbor_trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(labels, inner, max_size=5),
        st.dictionaries(
            st.one_of(st.integers(-1, 70000), st.tuples(st.integers(0, 9), st.integers(0, 9))),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=12)
)
JSON_KEYS = ["bn", "bt", "bv", "n", "v", "vs", "vb", "vd", "vlo", "t", "e", "sv", "ov"]
json_trees = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(JSON_KEYS), inner, max_size=5),
    ),
    max_leaves=20,
)  # fmt: skip


@pytest.mark.parametrize(
    "cf", [ContentFormat.CBOR, ContentFormat.SENML_CBOR, ContentFormat.LWM2M_CBOR], ids=lambda c: c.name
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=cbor_trees, base=bases, lookup=lookups)
def test_structured_cbor(cf: int, tree: object, base: Path, lookup: object) -> None:
    decode_or_typed_error(cf, cbor2.dumps(tree), base, lookup)


@pytest.mark.parametrize("cf", [ContentFormat.SENML_JSON, ContentFormat.LWM2M_JSON], ids=lambda c: c.name)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=json_trees, base=bases, lookup=lookups)
def test_structured_json(cf: int, tree: object, base: Path, lookup: object) -> None:
    decode_or_typed_error(cf, json.dumps(tree).encode(), base, lookup)


captured = [
    (
        v["content_format"],
        bytes.fromhex(v["payload_hex"]),
        Path.parse("/" if v["path"] == "/dp" else v["path"]),
    )
    for v in vectors_if_present()
    if v["content_format"] in SUPPORTED_FORMATS and v["payload_hex"]
]


@pytest.mark.skipif(not captured, reason="reference material ../shared/vectors is not available")
@settings(max_examples=400, deadline=None)
@given(
    sample=st.sampled_from(captured or [(0, b"", ROOT)]),
    edits=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 255), st.sampled_from("sid")), min_size=1, max_size=4
    ),
    lookup=lookups,
)
def test_mutated_captures(
    sample: tuple[int, bytes, Path], edits: list[tuple[int, int, str]], lookup: object
) -> None:
    cf, payload, base = sample
    data = bytearray(payload)
    for pos, byte, op in edits:
        i = pos % (len(data) + 1)
        if op == "s" and i < len(data):
            data[i] = byte
        elif op == "i":
            data.insert(i, byte)
        elif data:
            del data[min(i, len(data) - 1)]
    decode_or_typed_error(cf, bytes(data), base, lookup)


def _deep_json(n: int) -> bytes:
    return b"[" * n + b"]" * n


HOSTILE: list[tuple[str, int, bytes, Path]] = [
    ("CBOR array of 2**63 items", ContentFormat.SENML_CBOR, b"\x9b" + (2**63).to_bytes(8, "big"), ROOT),
    ("CBOR map of 2**62 pairs", ContentFormat.LWM2M_CBOR, b"\xbb" + (2**62).to_bytes(8, "big"), ROOT),
    (
        "CBOR 4 GiB byte string",
        ContentFormat.CBOR,
        b"\x5b" + (2**32).to_bytes(8, "big") + b"ab",
        Path(3, 0, 0),
    ),
    ("CBOR 2 GiB text", ContentFormat.SENML_CBOR, b"\x7a\x7f\xff\xff\xff" + b"a" * 10, ROOT),
    ("CBOR nesting 100k", ContentFormat.SENML_CBOR, b"\x81" * 100_000 + b"\x00", ROOT),
    ("CBOR indefinite nesting", ContentFormat.LWM2M_CBOR, b"\xbf\x01" * 50_000, ROOT),
    ("CBOR unterminated indefinite", ContentFormat.SENML_CBOR, b"\x9f\xa0", ROOT),
    ("CBOR regex tag", ContentFormat.CBOR, bytes.fromhex("d8236328283f"), Path(3, 0, 0)),
    ("CBOR shared-ref cycle", ContentFormat.SENML_CBOR, bytes.fromhex("d81c81d81d00"), ROOT),
    ("CBOR bignum", ContentFormat.CBOR, bytes.fromhex("c249010000000000000000"), Path(3, 0, 9)),
    ("CBOR set", ContentFormat.CBOR, bytes.fromhex("d9010281 01"), Path(3, 0, 9)),
    ("CBOR huge epoch time", ContentFormat.CBOR, bytes.fromhex("c11b7fffffffffffffff"), Path(3, 0, 13)),
    ("CBOR trailing bytes", ContentFormat.CBOR, b"\x01\x02", Path(3, 0, 9)),
    ("CBOR duplicate keys", ContentFormat.LWM2M_CBOR, bytes.fromhex("a2 83030009 01 83030009 02"), ROOT),
    ("CBOR undefined", ContentFormat.CBOR, b"\xf7", Path(3, 0, 9)),
    ("LwM2M CBOR path too deep", ContentFormat.LWM2M_CBOR, cbor2.dumps({(1, 2, 3): {4: {5: 1}}}), ROOT),
    ("LwM2M CBOR id 65536", ContentFormat.LWM2M_CBOR, cbor2.dumps({(1, 2, 65536): 1}), ROOT),
    ("LwM2M CBOR bool key", ContentFormat.LWM2M_CBOR, bytes.fromhex("a1f5 01"), ROOT),
    ("JSON nesting 100k", ContentFormat.SENML_JSON, _deep_json(100_000), ROOT),
    (
        "JSON 100k-digit number",
        ContentFormat.SENML_JSON,
        b'[{"n":"/3/0/9","v":' + b"9" * 100_000 + b"}]",
        ROOT,
    ),
    ("JSON NaN", ContentFormat.SENML_JSON, b'[{"n":"/3/0/9","v":NaN}]', ROOT),
    ("JSON 1e999 time", ContentFormat.SENML_JSON, b'[{"n":"/3/0/9","v":1,"t":1e999}]', ROOT),
    (
        "JSON huge int time",
        ContentFormat.LWM2M_JSON,
        b'{"e":[{"n":"/3/0/9","v":1,"t":' + b"9" * 400 + b"}]}",
        ROOT,
    ),
    ("JSON bad UTF-8", ContentFormat.LWM2M_JSON, b'{"e":[{"n":"\xff"}]}', ROOT),
    ("JSON huge bv", ContentFormat.SENML_JSON, b'[{"bv":1e308,"n":"/3/0/9","v":' + b"9" * 400 + b"}]", ROOT),
    ("TLV 24-bit length overrun", ContentFormat.TLV, bytes.fromhex("d800ffffff00"), Path(3, 0)),
    ("TLV truncated id", ContentFormat.TLV, b"\xe0\x01", Path(3, 0)),
    ("TLV instance in resource", ContentFormat.TLV, bytes.fromhex("8606 0000"), Path(3, 0)),
    ("TLV 3-byte integer", ContentFormat.TLV, bytes.fromhex("c309010203"), Path(3, 0)),
    ("TLV at root", ContentFormat.TLV, bytes.fromhex("c10964"), ROOT),
    ("text huge integer", ContentFormat.TEXT, b"9" * 5000, Path(3, 0, 9)),
    ("text float overflow", ContentFormat.TEXT, b"1e999", Path(3303, 0, 5700)),
    ("text time overflow", ContentFormat.TEXT, b"99999999999999999", Path(3, 0, 13)),
    ("text bad base64", ContentFormat.TEXT, b"@@", Path(TEST_OBJECT, 0, SINGLE_RID[ResourceType.OPAQUE])),
    ("text on an instance", ContentFormat.TEXT, b"1", Path(3, 0)),
    ("text on a multiple resource", ContentFormat.TEXT, b"1", Path(3, 0, 6)),
    ("opaque for an integer", ContentFormat.OPAQUE, b"\x01", Path(3, 0, 9)),
]


@pytest.mark.parametrize(("name", "cf", "payload", "base"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_payloads_fail_fast_and_small(name: str, cf: int, payload: bytes, base: Path) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(Lwm2mFormatError) as info:
            decode(cf, payload, base_path=base, registry=registry(), now=1e9)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2.0, name
    assert peak < 16 * len(payload) + 4 * 1024 * 1024, name
    assert info.value.kind is ErrorKind.BAD_REQUEST


def test_payload_size_limit_and_unknown_format() -> None:
    with pytest.raises(Lwm2mFormatError) as info:
        decode(ContentFormat.SENML_JSON, b" " * 2000, max_payload=1000)
    assert info.value.kind is ErrorKind.BAD_REQUEST
    for cf in (40, 41, 50, 99, 65535):
        with pytest.raises(Lwm2mFormatError) as info:
            decode(cf, b"")
        assert info.value.kind is ErrorKind.UNSUPPORTED_CONTENT_FORMAT
        assert info.value.kind.numeric == 4 << 5 | 15


any_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.datetimes(),
    st.tuples(st.integers(-1, 70000), st.integers(-1, 70000)).map(lambda t: ObjLink(*t)),
)
any_paths = st.lists(st.integers(0, 65535), max_size=4).map(lambda s: Path(*s))
any_records = st.lists(
    st.builds(Record, st.one_of(any_paths, st.sampled_from(BASES[1:])), any_values, st.none() | st.floats()),
    max_size=5,
)


@pytest.mark.parametrize("cf", FORMATS)
@settings(max_examples=150, deadline=None)
@given(records=any_records, base=st.none() | bases, lookup=lookups)
def test_encoding_anything_raises_only_typed_error(
    cf: int, records: list[Record], base: Path | None, lookup: object
) -> None:
    try:
        payload = encode(cf, records, base_path=base, registry=lookup)  # type: ignore[arg-type]
    except Lwm2mFormatError:
        return
    assert isinstance(payload, bytes)
