"""Format details: value typing, widths, base values, error kinds."""

from __future__ import annotations

import json

import cbor2
import pytest

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

from .support import MULTI_RID, SINGLE_RID, TEST_OBJECT, at, registry


def p(t: ResourceType, multi: bool = False) -> Path:
    return Path(TEST_OBJECT, 0, (MULTI_RID if multi else SINGLE_RID)[t])


def dec(cf: int, payload: bytes, base: Path = ROOT, **kw: object) -> list[Record]:
    return decode(cf, payload, base_path=base, registry=registry(), **kw)  # type: ignore[arg-type]


def enc(cf: int, records: list[Record], base: Path | None = None) -> bytes:
    return encode(cf, records, base_path=base, registry=registry())


def kind_of(fn: object, *args: object, **kw: object) -> ErrorKind:
    with pytest.raises(Lwm2mFormatError) as info:
        fn(*args, **kw)  # type: ignore[operator]
    return info.value.kind


# -- text/plain ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rtype", "text", "value"),
    [
        (ResourceType.STRING, "  a b ", "  a b "),
        (ResourceType.INTEGER, "-42", -42),
        (ResourceType.INTEGER, "+7", 7),
        (ResourceType.UNSIGNED_INTEGER, "18446744073709551615", 2**64 - 1),
        (ResourceType.FLOAT, "1e3", 1000.0),
        (ResourceType.FLOAT, "-0.5", -0.5),
        (ResourceType.FLOAT, "3", 3.0),
        (ResourceType.BOOLEAN, "1", True),
        (ResourceType.BOOLEAN, "0", False),
        (ResourceType.OPAQUE, "AAEC", b"\x00\x01\x02"),
        (ResourceType.TIME, "1700000000", at(1700000000)),
        (ResourceType.OBJLNK, "3303:12", ObjLink(3303, 12)),
        (ResourceType.CORELNK, "</3/0>", "</3/0>"),
    ],
)
def test_text_typed_by_model(rtype: ResourceType, text: str, value: object) -> None:
    assert dec(ContentFormat.TEXT, text.encode(), p(rtype)) == [Record(p(rtype), value)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rtype", "text"),
    [
        (ResourceType.INTEGER, "1.0"),
        (ResourceType.INTEGER, "9223372036854775808"),
        (ResourceType.INTEGER, " 1"),
        (ResourceType.INTEGER, "1_000"),
        (ResourceType.UNSIGNED_INTEGER, "-1"),
        (ResourceType.FLOAT, "nan"),
        (ResourceType.FLOAT, "inf"),
        (ResourceType.FLOAT, "1,5"),
        (ResourceType.BOOLEAN, "true"),
        (ResourceType.OBJLNK, "3303"),
        (ResourceType.OBJLNK, "70000:0"),
        (ResourceType.OPAQUE, "AA=E"),
    ],
)
def test_text_rejects(rtype: ResourceType, text: str) -> None:
    assert kind_of(dec, ContentFormat.TEXT, text.encode(), p(rtype)) is ErrorKind.BAD_REQUEST


def test_text_encoding() -> None:
    assert enc(ContentFormat.TEXT, [Record(p(ResourceType.BOOLEAN), True)]) == b"1"
    assert enc(ContentFormat.TEXT, [Record(p(ResourceType.TIME), at(5))]) == b"5"
    assert enc(ContentFormat.TEXT, [Record(p(ResourceType.OPAQUE), b"\x00\x01\x02")]) == b"AAEC"
    assert enc(ContentFormat.TEXT, [Record(p(ResourceType.OBJLNK), ObjLink(1, 2))]) == b"1:2"
    assert enc(ContentFormat.TEXT, [Record(p(ResourceType.FLOAT), 2)]) == b"2.0"  # int for a Float
    assert (
        kind_of(enc, ContentFormat.TEXT, [Record(p(ResourceType.FLOAT), float("inf"))])
        is ErrorKind.NOT_ACCEPTABLE
    )
    two = [Record(p(ResourceType.FLOAT), 1.0), Record(p(ResourceType.INTEGER), 1)]
    assert kind_of(enc, ContentFormat.TEXT, two) is ErrorKind.NOT_ACCEPTABLE
    assert kind_of(enc, ContentFormat.TEXT, [Record(Path(3, 0), 1)]) is ErrorKind.NOT_ACCEPTABLE
    assert kind_of(enc, ContentFormat.TEXT, [Record(p(ResourceType.INTEGER), "x")]) is ErrorKind.BAD_REQUEST
    assert (
        kind_of(enc, ContentFormat.OPAQUE, [Record(p(ResourceType.INTEGER), 1)]) is ErrorKind.NOT_ACCEPTABLE
    )


# -- TLV -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rtype", "value", "body"),
    [
        (ResourceType.INTEGER, 0, "00"),
        (ResourceType.INTEGER, 127, "7f"),
        (ResourceType.INTEGER, 128, "0080"),
        (ResourceType.INTEGER, -129, "ff7f"),
        (ResourceType.INTEGER, 40000, "00009c40"),
        (ResourceType.INTEGER, 2**40, "0000010000000000"),
        (ResourceType.UNSIGNED_INTEGER, 255, "ff"),
        (ResourceType.UNSIGNED_INTEGER, 2**64 - 1, "ffffffffffffffff"),
        (ResourceType.FLOAT, 26.0, "41d00000"),
        (ResourceType.FLOAT, 0.1, "3fb999999999999a"),
        (ResourceType.BOOLEAN, True, "01"),
        (ResourceType.TIME, at(1367491215), "5182428f"),
        (ResourceType.OBJLNK, ObjLink(33606, 0), "83460000"),
        (ResourceType.STRING, "é", "c3a9"),
        (ResourceType.OPAQUE, b"\x00", "00"),
    ],
)
def test_tlv_value_widths(rtype: ResourceType, value: object, body: str) -> None:
    record = Record(p(rtype), value)  # type: ignore[arg-type]
    payload = enc(ContentFormat.TLV, [record])
    raw = bytes.fromhex(body)
    # A resource entry: the length sits in the type byte below 8, in a length byte from 8 on.
    head = (
        bytes([0xC0 | len(raw), SINGLE_RID[rtype]]) if len(raw) < 8 else bytes([0xC8, SINGLE_RID[rtype], 8])
    )
    assert payload == head + raw
    assert dec(ContentFormat.TLV, payload, p(rtype)) == [record]


def test_tlv_long_values_and_ids() -> None:
    for size, header in ((7, "c7"), (8, "c808"), (300, "d0012c"), (70000, "d8011170")):
        record = Record(Path(3, 0, 14), "x" * size)
        payload = enc(ContentFormat.TLV, [record])
        assert payload.startswith(bytes.fromhex(header[:2] + "0e" + header[2:]))
        assert dec(ContentFormat.TLV, payload, Path(3, 0)) == [record]
    record = Record(Path(3303, 0, 5700), 21.5)
    payload = enc(ContentFormat.TLV, [record], Path(3303, 0))
    assert payload == bytes.fromhex("e4164441ac0000")
    # 4 and 8 byte floats, 1/2/4/8 byte integers all decode.
    eight = bytes.fromhex("e81644084035800000000000")
    assert dec(ContentFormat.TLV, eight, Path(3303, 0)) == [Record(Path(3303, 0, 5700), 21.5)]
    for width in ("01", "0001", "00000001", "0000000000000001"):
        raw = bytes.fromhex(width)
        payload = (bytes([0xC0 | len(raw), 9]) if len(raw) < 8 else bytes([0xC8, 9, 8])) + raw
        assert dec(ContentFormat.TLV, payload, Path(3, 0)) == [Record(Path(3, 0, 9), 1)]


def test_tlv_object_level_and_instance_wrapper() -> None:
    records = [Record(Path(3, 0, 9), 100), Record(Path(3, 1, 9), 50)]
    payload = enc(ContentFormat.TLV, records)
    assert payload == bytes.fromhex("0300c109640301c10932")
    assert dec(ContentFormat.TLV, payload, Path(3)) == records
    # An instance read wrapped in its object-instance entry.
    assert dec(ContentFormat.TLV, bytes.fromhex("0300c10964"), Path(3, 0)) == records[:1]


@pytest.mark.parametrize(
    ("payload", "base"),
    [
        ("c30901020a", Path(3, 0)),  # a 3-byte Integer
        ("e31644000000", Path(3303, 0)),  # a 3-byte Float
        ("c1140002", Path(3, 0)),  # resource 20 (Integer) fine, but: see below
        ("c10902", Path(3, 0, 10)),  # resource 9 in a payload for /3/0/10
        ("0300c10964", Path(3, 0, 9)),  # an object instance in a resource payload
        ("c10964", Path(3)),  # a resource where instances were expected
        ("c50e41424344ff", Path(3, 0)),  # invalid UTF-8 in a String
        ("4100ff", Path(3, 0)),  # a resource instance outside a multiple resource
        ("8606c10001410105", Path(3, 0)),  # a resource inside a multiple resource
        ("c00e", Path(3, 0, 14, 0)),  # not the resource instance asked for
    ],
)
def test_tlv_rejects(payload: str, base: Path) -> None:
    if payload == "c1140002":
        payload = "c2140002ff"  # a 2-byte Integer followed by a truncated entry
    assert kind_of(dec, ContentFormat.TLV, bytes.fromhex(payload), base) is ErrorKind.BAD_REQUEST


def test_tlv_encode_rejects() -> None:
    assert kind_of(enc, ContentFormat.TLV, [Record(Path(3, 0, 9), 1), Record(Path(4, 0, 9), 1)]) is (
        ErrorKind.NOT_ACCEPTABLE
    )
    dup = [Record(Path(3, 0, 9), 1), Record(Path(3, 0, 9), 2)]
    assert kind_of(enc, ContentFormat.TLV, dup) is ErrorKind.NOT_ACCEPTABLE
    mixed = [Record(Path(3, 0, 6), 1), Record(Path(3, 0, 6, 0), 2)]
    assert kind_of(enc, ContentFormat.TLV, mixed) is ErrorKind.NOT_ACCEPTABLE
    outside = [Record(Path(3, 0, 9), 1)]
    assert kind_of(encode, ContentFormat.TLV, outside, base_path=Path(4)) is ErrorKind.NOT_ACCEPTABLE
    assert kind_of(enc, ContentFormat.TLV, [Record(Path(3, 0, 9), None)]) is ErrorKind.BAD_REQUEST
    assert kind_of(enc, ContentFormat.TLV, [Record(Path(3, 0, 9), 2**63)]) is ErrorKind.BAD_REQUEST


# -- SenML -----------------------------------------------------------------------------------------


def test_senml_base_value_units_and_ignored_fields() -> None:
    payload = json.dumps(
        [
            {"bn": "/3303/0/", "bv": 20, "bu": "Cel", "bver": 10, "n": "5700", "v": 1.5, "u": "Cel"},
            {"n": "5601", "v": -3},
            {"n": "5701", "vs": "Cel", "other": 1},
        ]
    ).encode()
    assert dec(ContentFormat.SENML_JSON, payload) == [
        Record(Path(3303, 0, 5700), 21.5),
        Record(Path(3303, 0, 5601), 17.0),
        Record(Path(3303, 0, 5701), "Cel"),
    ]


def test_senml_vd_base64url_with_and_without_padding() -> None:
    path = p(ResourceType.OPAQUE)
    for vd in ("_-8", "_-8=", "/+8"):
        payload = json.dumps([{"n": str(path), "vd": vd}]).encode()
        assert dec(ContentFormat.SENML_JSON, payload) == [Record(path, b"\xff\xef")]
    assert json.loads(enc(ContentFormat.SENML_JSON, [Record(path, b"\xff\xef")])) == [
        {"bn": f"{path.parent}/", "n": str(path[2]), "vd": "_-8"}
    ]
    cbor_payload = enc(ContentFormat.SENML_CBOR, [Record(path, b"\xff\xef")])
    assert cbor2.loads(cbor_payload)[0][8] == b"\xff\xef"


def test_senml_vlo_and_naming_styles() -> None:
    link = Path(3, 0, 22, 0)
    for doc in (
        [{"bn": "/3/0/", "n": "22/0", "vlo": "33606:0"}],
        [{"bn": "/3/0", "n": "/22/0", "vlo": "33606:0"}],
        [{"n": "/3/0/22/0", "vlo": "33606:0"}],
        [{"bn": "/3/0/22/0", "vlo": "33606:0"}],
    ):
        assert dec(ContentFormat.SENML_JSON, json.dumps(doc).encode()) == [Record(link, ObjLink(33606, 0))]
        cbor_doc = [{{"bn": -2, "n": 0}.get(k, k): v for k, v in rec.items()} for rec in doc]
        assert dec(ContentFormat.SENML_CBOR, cbor2.dumps(cbor_doc)) == [Record(link, ObjLink(33606, 0))]


def test_senml_relative_time_uses_now() -> None:
    payload = b'[{"n":"/3/0/9","v":1,"t":0},{"n":"/3/0/9","v":2,"t":-60.5},{"n":"/3/0/9","v":3}]'
    assert [r.time for r in dec(ContentFormat.SENML_JSON, payload, now=1000.0)] == [1000.0, 939.5, None]
    absolute = b'[{"bt":1700000000,"n":"/3/0/9","v":1},{"n":"/3/0/9","v":2,"t":5}]'
    assert [r.time for r in dec(ContentFormat.SENML_JSON, absolute)] == [1700000000.0, 1700000005.0]


@pytest.mark.parametrize(
    "doc",
    [
        {"n": "/3/0/9", "v": 1},  # not an array
        [[]],
        [{"v": 1}],  # no name at all
        [{"n": "/3/0/9", "v": 1, "vs": "x"}],
        [{"n": "/3/0/9", "v": "1"}],
        [{"n": "/3/0/9", "vb": 1}],
        [{"n": "/3/0/9", "v": 1, "unknown_": 1}],
        [{"n": "/3/0", "v": 1}],  # a value on an instance
        [{"n": "/3/0/9", "v": 1.5}],  # not an Integer
        [{"n": "/3/0/0", "v": 1}],  # a number for a String
        [{"n": "/3/0/9", "v": True}],
        [{"bn": 5, "n": "9", "v": 1}],
        [{"n": "/3/0/9", "v": 1, "t": "now"}],
        [{"n": "3/0/9", "v": 1}],
        [{"n": "/3/0/22/0", "vlo": "x"}],
        [{"n": "/3/0/9", "vd": "!!"}],
    ],
)
def test_senml_rejects(doc: object) -> None:
    assert kind_of(dec, ContentFormat.SENML_JSON, json.dumps(doc).encode()) is ErrorKind.BAD_REQUEST


def test_senml_encode_naming() -> None:
    one = enc(ContentFormat.SENML_JSON, [Record(Path(3, 0, 9), 33)])
    assert one == b'[{"bn":"/3/0/","n":"9","v":33}]'
    composite = enc(ContentFormat.SENML_JSON, [Record(Path(3, 0, 9), 1), Record(Path(3303, 0, 5700), 2.5)])
    assert composite == b'[{"n":"/3/0/9","v":1},{"n":"/3303/0/5700","v":2.5}]'
    at_base = encode(ContentFormat.SENML_JSON, [Record(Path(3, 0, 9), 1)], base_path=Path(3, 0, 9))
    assert at_base == b'[{"bn":"/3/0/","n":"9","v":1}]'
    timed = enc(ContentFormat.SENML_JSON, [Record(Path(3, 0, 9), 1, 1700000000.5)])
    assert json.loads(timed)[0]["t"] == 1700000000.5
    assert (
        kind_of(enc, ContentFormat.SENML_JSON, [Record(Path(3, 0, 9), 1, 100.0)]) is ErrorKind.NOT_ACCEPTABLE
    )
    outside = [Record(Path(3, 0, 9), 1)]
    assert kind_of(encode, ContentFormat.SENML_JSON, outside, base_path=Path(4)) is ErrorKind.NOT_ACCEPTABLE


# -- LwM2M JSON ------------------------------------------------------------------------------------


def test_lwm2m_json_values() -> None:
    payload = json.dumps(
        {
            "bn": "/40000/0/",
            "e": [
                {"n": str(SINGLE_RID[ResourceType.OPAQUE]), "sv": "AAE="},
                {"n": str(SINGLE_RID[ResourceType.BOOLEAN]), "bv": True},
                {"n": str(SINGLE_RID[ResourceType.OBJLNK]), "ov": "1:2"},
                {"n": str(SINGLE_RID[ResourceType.TIME]), "v": 10},
            ],
        }
    ).encode()
    assert [r.value for r in dec(ContentFormat.LWM2M_JSON, payload)] == [
        b"\x00\x01",
        True,
        ObjLink(1, 2),
        at(10),
    ]
    # Without bn, relative names hang off the request path.
    relative = b'{"e":[{"n":"9","v":5}]}'
    assert dec(ContentFormat.LWM2M_JSON, relative, Path(3, 0)) == [Record(Path(3, 0, 9), 5)]
    for bad in (
        b"[]",
        b'{"e":{}}',
        b'{"bn":1,"e":[]}',
        b'{"e":[{"n":"/3/0/9","v":1,"sv":"x"}]}',
        b'{"e":[1]}',
    ):
        assert kind_of(dec, ContentFormat.LWM2M_JSON, bad) is ErrorKind.BAD_REQUEST


# -- CBOR and LwM2M CBOR ---------------------------------------------------------------------------


def test_plain_cbor_values() -> None:
    time_path = p(ResourceType.TIME)
    assert dec(ContentFormat.CBOR, bytes.fromhex("c11a6553f100"), time_path) == [
        Record(time_path, at(1700000000))
    ]
    assert dec(ContentFormat.CBOR, bytes.fromhex("1a6553f100"), time_path) == [
        Record(time_path, at(1700000000))
    ]
    assert dec(ContentFormat.CBOR, bytes.fromhex("f93e00"), Path(3303, 0, 5700)) == [
        Record(Path(3303, 0, 5700), 1.5)
    ]
    assert kind_of(dec, ContentFormat.CBOR, bytes.fromhex("f93e00"), Path(3, 0, 9)) is ErrorKind.BAD_REQUEST
    assert dec(ContentFormat.CBOR, bytes.fromhex("f93c00"), Path(3, 0, 9)) == [Record(Path(3, 0, 9), 1)]
    link = p(ResourceType.OBJLNK)
    assert enc(ContentFormat.CBOR, [Record(link, ObjLink(3, 4))]) == cbor2.dumps("3:4")
    assert enc(ContentFormat.CBOR, [Record(time_path, at(1700000000))]) == bytes.fromhex("1a6553f100")
    for bad in ("f6", "80", "a0", "0102", "d8236161"):
        assert kind_of(dec, ContentFormat.CBOR, bytes.fromhex(bad), Path(3, 0, 9)) is ErrorKind.BAD_REQUEST


def test_lwm2m_cbor_rejects_bad_trees() -> None:
    for tree in (
        [1],
        {"3": 1},
        {3: 1},  # a value on an object
        {(3, 0): 1},
        {(): 1},
        {(3, -1, 0): 1},
        {(3, 0, 9, 0): {1: 1}},
        {(3, 0, 9): "x"},  # not an Integer
    ):
        assert kind_of(dec, ContentFormat.LWM2M_CBOR, cbor2.dumps(tree)) is ErrorKind.BAD_REQUEST, tree
    mixed = [Record(Path(3, 0, 6), 1), Record(Path(3, 0, 6, 0), 2)]
    assert kind_of(enc, ContentFormat.LWM2M_CBOR, mixed) is ErrorKind.NOT_ACCEPTABLE


def test_unknown_format_on_encode() -> None:
    assert kind_of(encode, 40, [Record(Path(3, 0, 9), 1)]) is ErrorKind.UNSUPPORTED_CONTENT_FORMAT
    assert kind_of(encode, 1234, []) is ErrorKind.UNSUPPORTED_CONTENT_FORMAT


def test_legacy_numbers_are_aliases() -> None:
    assert dec(ContentFormat.LEGACY_TLV, bytes.fromhex("c10964"), Path(3, 0)) == [Record(Path(3, 0, 9), 100)]
    assert dec(ContentFormat.LEGACY_JSON, b'{"bn":"/3/0/","e":[{"n":"9","v":1}]}') == [
        Record(Path(3, 0, 9), 1)
    ]


def test_error_kind_codes() -> None:
    assert [k.value for k in ErrorKind] == ["4.00", "4.06", "4.15"]
    assert [k.numeric for k in ErrorKind] == [128, 134, 143]
    err = Lwm2mFormatError("why", ErrorKind.NOT_ACCEPTABLE)
    assert err.reason == "why" and str(err) == "why" and "4.06" in repr(err)
    assert isinstance(err, ValueError)
