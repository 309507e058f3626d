"""Values JSON cannot carry (NaN, infinities) and times no calendar holds are refused by every content
format's decoder, naming the record; random payloads full of them never come out as records."""

from __future__ import annotations

import json
import math
import struct

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.lwm2m import (
    ROOT,
    ContentFormat,
    ErrorKind,
    Lwm2mFormatError,
    ObjectRegistry,
    Path,
    Record,
    UnrepresentableValue,
    decode,
)
from translator.lwm2m.representable import MAX_TIME, MIN_TIME

REGISTRY = ObjectRegistry.builtin()
TEMPERATURE = Path(3303, 0, 5700)
NOW = 1.7e9


def _tlv_float(resource: int, value: float) -> bytes:
    # Resource with value, 16-bit id, 8-bit length (OMA TS Core, TLV type byte 0b11_1_01_000).
    return bytes([0b11101000]) + resource.to_bytes(2, "big") + bytes([8]) + struct.pack(">d", value)


CASES = {
    "CBOR NaN": (ContentFormat.CBOR, cbor2.dumps(math.nan), TEMPERATURE),
    "SenML CBOR inf": (ContentFormat.SENML_CBOR, cbor2.dumps([{0: "/3303/0/5700", 2: math.inf}]), ROOT),
    "SenML CBOR bv + v overflows": (
        ContentFormat.SENML_CBOR,
        cbor2.dumps([{-2: "/3303/0/", -5: 1e308, 0: "5700", 2: 1e308}]),
        ROOT,
    ),
    "SenML JSON 1e999": (ContentFormat.SENML_JSON, b'[{"n":"/3303/0/5700","v":1e999}]', ROOT),
    "SenML JSON time 1e20": (ContentFormat.SENML_JSON, b'[{"n":"/3303/0/5700","v":1,"t":1e20}]', ROOT),
    "SenML JSON time -1e20": (ContentFormat.SENML_JSON, b'[{"n":"/3303/0/5700","v":1,"t":-1e20}]', ROOT),
    "SenML CBOR bt + t overflows": (
        ContentFormat.SENML_CBOR,
        cbor2.dumps([{-3: 1.7e308, 0: "/3303/0/5700", 2: 1.0, 6: 1.7e308}]),
        ROOT,
    ),
    "LwM2M CBOR NaN": (ContentFormat.LWM2M_CBOR, cbor2.dumps({3303: {0: {5700: math.nan}}}), ROOT),
    "TLV NaN": (ContentFormat.TLV, _tlv_float(5700, math.nan), Path(3303, 0)),
    "TLV -inf": (ContentFormat.TLV, _tlv_float(5700, -math.inf), Path(3303, 0)),
    "LwM2M JSON inf": (
        ContentFormat.LWM2M_JSON,
        b'{"bn":"/3303/0/","e":[{"n":"5700","v":1e999}]}',
        Path(3303, 0),
    ),
    "LwM2M JSON time 1e20": (
        ContentFormat.LWM2M_JSON,
        b'{"bn":"/3303/0/","e":[{"n":"5700","v":1,"t":1e20}]}',
        Path(3303, 0),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_format_refuses_what_json_cannot_carry(name: str) -> None:
    cf, payload, base = CASES[name]
    with pytest.raises(UnrepresentableValue) as info:
        decode(cf, payload, base_path=base, registry=REGISTRY, now=NOW)
    assert info.value.kind is ErrorKind.BAD_REQUEST
    assert "/3303/0/5700" in info.value.reason and "record 0" in info.value.reason


@pytest.mark.parametrize("text", [b"nan", b"inf", b"-Infinity", b"1e999"])
def test_text_refuses_them_too(text: bytes) -> None:
    with pytest.raises(Lwm2mFormatError) as info:
        decode(ContentFormat.TEXT, text, base_path=TEMPERATURE, registry=REGISTRY, now=NOW)
    assert info.value.kind is ErrorKind.BAD_REQUEST


def test_limits_are_the_calendar() -> None:
    ok = [{0: "/3303/0/5700", 2: 1.0, 6: MIN_TIME + 2**28}, {0: "/3303/0/5700", 2: 2.0, 6: MAX_TIME}]
    records = decode(ContentFormat.SENML_CBOR, cbor2.dumps(ok), registry=REGISTRY, now=NOW)
    assert [r.time for r in records] == [2**28, MAX_TIME]
    late = [{0: "/3303/0/5700", 2: 1.0, 6: MAX_TIME + 1}]
    with pytest.raises(UnrepresentableValue):
        decode(ContentFormat.SENML_CBOR, cbor2.dumps(late), registry=REGISTRY, now=NOW)


def _representable(records: list[Record]) -> None:
    for record in records:
        if isinstance(record.value, float):
            assert math.isfinite(record.value), record
        if record.time is not None:
            assert MIN_TIME <= record.time <= MAX_TIME, record


# Numbers meant to break things, at the places a value or a time goes.
numbers = st.one_of(
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e20, -1e20, MAX_TIME + 1]),
    st.integers(-(2**70), 2**70),
)
names = st.sampled_from(["/3303/0/5700", "/3303/0/", "5700", "/3/0/13", "/3/0/7/0"])
senml_records = st.lists(
    st.fixed_dictionaries(
        {0: names},
        optional={-2: names, -3: numbers, -5: numbers, 2: numbers, 6: numbers},
    ),
    min_size=1,
    max_size=5,
)
json_records = st.lists(
    st.fixed_dictionaries(
        {"n": names},
        optional={"bn": names, "bt": numbers, "bv": numbers, "v": numbers, "t": numbers},
    ),
    min_size=1,
    max_size=5,
)
nested = st.dictionaries(
    st.sampled_from([3303, 3]),
    st.dictionaries(st.integers(0, 2), st.dictionaries(st.sampled_from([5700, 13, 7]), numbers, max_size=3)),
    max_size=2,
)


def _decoded_or_refused(cf: int, payload: bytes, base: Path = ROOT) -> None:
    try:
        records = decode(cf, payload, base_path=base, registry=REGISTRY, now=NOW)
    except Lwm2mFormatError as exc:
        assert exc.kind is ErrorKind.BAD_REQUEST
        return
    _representable(records)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack=senml_records)
def test_senml_cbor_never_yields_an_unrepresentable_record(pack: list[dict[int, object]]) -> None:
    _decoded_or_refused(ContentFormat.SENML_CBOR, cbor2.dumps(pack))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack=json_records)
def test_senml_json_never_yields_an_unrepresentable_record(pack: list[dict[str, object]]) -> None:
    # Python writes NaN/Infinity as bare words (not JSON); the decoder must refuse those too.
    _decoded_or_refused(ContentFormat.SENML_JSON, json.dumps(pack).encode())
    _decoded_or_refused(ContentFormat.LWM2M_JSON, json.dumps({"bn": "/", "e": pack}).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=nested, value=numbers)
def test_cbor_formats_never_yield_an_unrepresentable_record(tree: object, value: object) -> None:
    _decoded_or_refused(ContentFormat.LWM2M_CBOR, cbor2.dumps(tree))
    _decoded_or_refused(ContentFormat.CBOR, cbor2.dumps(value), TEMPERATURE)


@settings(max_examples=300, deadline=None)
@given(value=st.floats(), rid=st.sampled_from([5700, 5701, 13]))
def test_tlv_never_yields_an_unrepresentable_record(value: float, rid: int) -> None:
    _decoded_or_refused(ContentFormat.TLV, _tlv_float(rid, value), Path(3303, 0))
    _decoded_or_refused(ContentFormat.TEXT, repr(value).encode(), TEMPERATURE)
