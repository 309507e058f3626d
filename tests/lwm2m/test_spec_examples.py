"""Examples in the style of the OMA LwM2M specification (TLV, SenML, LwM2M JSON, LwM2M CBOR), as test data."""

from __future__ import annotations

import json

import cbor2

from translator.lwm2m import ContentFormat, ObjLink, Path, Record, decode, encode

from .support import at, registry, typed

# The Device object instance of the specification's examples (Read /3/0).
DEVICE = [
    Record(Path(3, 0, 0), "Open Mobile Alliance"),
    Record(Path(3, 0, 1), "Lightweight M2M Client"),
    Record(Path(3, 0, 2), "345000123"),
    Record(Path(3, 0, 3), "1.0"),
    Record(Path(3, 0, 6, 0), 1),
    Record(Path(3, 0, 6, 1), 5),
    Record(Path(3, 0, 7, 0), 3800),
    Record(Path(3, 0, 7, 1), 5000),
    Record(Path(3, 0, 8, 0), 125),
    Record(Path(3, 0, 8, 1), 900),
    Record(Path(3, 0, 9), 100),
    Record(Path(3, 0, 10), 15),
    Record(Path(3, 0, 11, 0), 0),
    Record(Path(3, 0, 13), at(1367491215)),
    Record(Path(3, 0, 14), "+02:00"),
    Record(Path(3, 0, 16), "U"),
]

DEVICE_TLV = bytes.fromhex(
    "c800144f70656e204d6f62696c6520416c6c69616e6365"  # 0 Manufacturer, 8-bit length 0x14
    "c801164c69676874776569676874204d324d20436c69656e74"  # 1 Model Number
    "c80209333435303030313233"  # 2 Serial Number
    "c303312e30"  # 3 Firmware Version, length in the type byte
    "8606410001410105"  # 6 Available Power Sources: multiple resource, two instances
    "88070842000ed842011388"  # 7 Power Source Voltage: 3800, 5000 (2-byte integers)
    "870841007d42010384"  # 8 Power Source Current: 125, 900
    "c10964"  # 9 Battery Level 100
    "c10a0f"  # 10 Memory Free 15
    "830b410000"  # 11 Error Code [0]
    "c40d5182428f"  # 13 Current Time 1367491215 (4-byte integer)
    "c60e2b30323a3030"  # 14 UTC Offset "+02:00"
    "c11055"  # 16 Binding "U"
)  # fmt: skip

# Access Control object, two instances (object-instance entries; a 16-bit resource instance id 310).
ACCESS_CONTROL_TLV = bytes.fromhex(
    "08000e" "c10001" "c10100" "8302417f07" "c1037f"
    "080212" "c10003" "c10100" "8702417f07" "61013601" "c1037f"
)  # fmt: skip
ACCESS_CONTROL = [
    Record(Path(2, 0, 0), 1),
    Record(Path(2, 0, 1), 0),
    Record(Path(2, 0, 2, 127), 7),
    Record(Path(2, 0, 3), 127),
    Record(Path(2, 2, 0), 3),
    Record(Path(2, 2, 1), 0),
    Record(Path(2, 2, 2, 127), 7),
    Record(Path(2, 2, 2, 310), 1),
    Record(Path(2, 2, 3), 127),
]

DEVICE_SENML = (
    '[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"1","vs":"Lightweight M2M Client"},'
    '{"n":"2","vs":"345000123"},{"n":"3","vs":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},'
    '{"n":"7/0","v":3800},{"n":"7/1","v":5000},{"n":"8/0","v":125},{"n":"8/1","v":900},'
    '{"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},'
    '{"n":"14","vs":"+02:00"},{"n":"16","vs":"U"}]'
)

DEVICE_LWM2M_JSON = (
    '{"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"1","sv":"Lightweight M2M Client"},'
    '{"n":"2","sv":"345000123"},{"n":"3","sv":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},'
    '{"n":"7/0","v":3800},{"n":"7/1","v":5000},{"n":"8/0","v":125},{"n":"8/1","v":900},'
    '{"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},'
    '{"n":"14","sv":"+02:00"},{"n":"16","sv":"U"}]}'
)


def test_tlv_single_instance_example() -> None:
    reg = registry()
    assert typed(decode(ContentFormat.TLV, DEVICE_TLV, base_path=Path(3, 0), registry=reg)) == typed(DEVICE)
    assert encode(ContentFormat.TLV, DEVICE, base_path=Path(3, 0), registry=reg) == DEVICE_TLV
    # Without a base path the records' common prefix (/3/0) is used.
    assert encode(ContentFormat.TLV, DEVICE, registry=reg) == DEVICE_TLV


def test_tlv_multiple_instances_example() -> None:
    reg = registry()
    assert typed(decode(ContentFormat.TLV, ACCESS_CONTROL_TLV, base_path=Path(2), registry=reg)) == typed(
        ACCESS_CONTROL
    )
    assert encode(ContentFormat.TLV, ACCESS_CONTROL, base_path=Path(2), registry=reg) == ACCESS_CONTROL_TLV


def test_tlv_resource_and_resource_instance_reads() -> None:
    reg = registry()
    power = bytes.fromhex("8606410001410105")
    expected = [Record(Path(3, 0, 6, 0), 1), Record(Path(3, 0, 6, 1), 5)]
    assert typed(decode(ContentFormat.TLV, power, base_path=Path(3, 0, 6), registry=reg)) == typed(expected)
    assert encode(ContentFormat.TLV, expected, base_path=Path(3, 0, 6), registry=reg) == power
    # Bare resource instances answering a multiple-resource read are accepted too.
    assert typed(decode(ContentFormat.TLV, power[2:], base_path=Path(3, 0, 6), registry=reg)) == typed(
        expected
    )
    one = bytes.fromhex("410105")
    assert decode(ContentFormat.TLV, one, base_path=Path(3, 0, 6, 1), registry=reg) == [expected[1]]
    assert encode(ContentFormat.TLV, [expected[1]], registry=reg) == one


def test_senml_json_device_example() -> None:
    reg = registry()
    assert (
        decode(ContentFormat.SENML_JSON, DEVICE_SENML.encode(), base_path=Path(3, 0), registry=reg) == DEVICE
    )
    assert (
        encode(ContentFormat.SENML_JSON, DEVICE, base_path=Path(3, 0), registry=reg).decode() == DEVICE_SENML
    )


def test_lwm2m_json_device_example() -> None:
    reg = registry()
    payload = DEVICE_LWM2M_JSON.encode()
    assert typed(decode(ContentFormat.LWM2M_JSON, payload, base_path=Path(3, 0), registry=reg)) == typed(
        DEVICE
    )
    assert encode(ContentFormat.LWM2M_JSON, DEVICE, base_path=Path(3, 0), registry=reg) == payload


def test_senml_time_series_notification() -> None:
    # A temperature history: bn names the resource, bt is absolute, t is relative to bt.
    payload = b'[{"bn":"/3303/0/5700","bt":1700000000,"v":22.4,"t":-5},{"v":22.9,"t":-30},{"v":24.1,"t":-50}]'
    assert decode(ContentFormat.SENML_JSON, payload, registry=registry()) == [
        Record(Path(3303, 0, 5700), 22.4, 1699999995.0),
        Record(Path(3303, 0, 5700), 22.9, 1699999970.0),
        Record(Path(3303, 0, 5700), 24.1, 1699999950.0),
    ]
    # Times below 2**28 are relative to "now".
    relative = b'[{"n":"/3303/0/5700","v":21,"t":-10},{"n":"/3303/0/5700","v":20,"bt":-60}]'
    assert decode(ContentFormat.SENML_JSON, relative, registry=registry(), now=1000000000.0) == [
        Record(Path(3303, 0, 5700), 21.0, 999999990.0),
        Record(Path(3303, 0, 5700), 20.0, 999999940.0),
    ]


def test_lwm2m_json_time_series() -> None:
    payload = b'{"bn":"/3303/0/5700","bt":1700000000,"e":[{"v":22.4,"t":-5},{"v":22.9,"t":-30}]}'
    assert decode(ContentFormat.LWM2M_JSON, payload, registry=registry()) == [
        Record(Path(3303, 0, 5700), 22.4, 1699999995.0),
        Record(Path(3303, 0, 5700), 22.9, 1699999970.0),
    ]


def test_senml_cbor_send_example() -> None:
    payload = bytes.fromhex(
        "83"  # array of 3 records
        "a4" "21" "682f333330332f302f" "00" "6435373030" "22" "fb41d954fc40000000" "02" "fa41b40000"
        "a3" "00" "6435373031" "03" "6343656c" "06" "20"
        "a3" "21" "60" "00" "692f332f302f32322f30" "63766c6f" "63333a31"
    )  # fmt: skip
    # {bn "/3303/0/", n "5700", bt 1700000000.0, v 22.5}, {n "5701", vs "Cel", t -1},
    # {bn "", n "/3/0/22/0", vlo "3:1"}: base name and base time carry over until set again.
    assert decode(ContentFormat.SENML_CBOR, payload, registry=registry()) == [
        Record(Path(3303, 0, 5700), 22.5, 1700000000.0),
        Record(Path(3303, 0, 5701), "Cel", 1699999999.0),
        Record(Path(3, 0, 22, 0), ObjLink(3, 1), 1700000000.0),
    ]


def test_senml_cbor_encoding_matches_anjay_style() -> None:
    payload = encode(ContentFormat.SENML_CBOR, [Record(Path(3303, 0, 5700), 26.0)], registry=registry())
    assert payload == bytes.fromhex("81a321682f333330332f302f00643537303002fa41d00000")
    assert cbor2.loads(payload) == [{-2: "/3303/0/", 0: "5700", 2: 26.0}]


LWM2M_CBOR_DEVICE = {
    "nested": {3: {0: {0: "Open Mobile Alliance", 6: {0: 1, 1: 5}, 9: 100, 13: 1367491215, 22: {0: "3:1"}}}},
    "array keys": {
        (3, 0): {0: "Open Mobile Alliance", (6, 0): 1, (6, 1): 5, 9: 100, 13: 1367491215, (22, 0): "3:1"}
    },
    "flat": {
        (3, 0, 0): "Open Mobile Alliance",
        (3, 0, 6, 0): 1,
        (3, 0, 6, 1): 5,
        (3, 0, 9): 100,
        (3, 0, 13): 1367491215,
        (3, 0, 22, 0): "3:1",
    },
}
LWM2M_CBOR_RECORDS = [
    Record(Path(3, 0, 0), "Open Mobile Alliance"),
    Record(Path(3, 0, 6, 0), 1),
    Record(Path(3, 0, 6, 1), 5),
    Record(Path(3, 0, 9), 100),
    Record(Path(3, 0, 13), at(1367491215)),
    Record(Path(3, 0, 22, 0), ObjLink(3, 1)),
]


def test_lwm2m_cbor_all_key_styles_are_the_same_records() -> None:
    for style, tree in LWM2M_CBOR_DEVICE.items():
        records = decode(
            ContentFormat.LWM2M_CBOR, cbor2.dumps(tree), base_path=Path(3, 0), registry=registry()
        )
        assert records == LWM2M_CBOR_RECORDS, style


def test_lwm2m_cbor_indefinite_maps_and_null() -> None:
    # {_ 3: {_ 0: {_ 0: "abc", 1: null}}}
    payload = bytes.fromhex("bf03bf00bf006361626301f6ffffff")
    assert decode(ContentFormat.LWM2M_CBOR, payload, registry=registry()) == [
        Record(Path(3, 0, 0), "abc"),
        Record(Path(3, 0, 1), None),
    ]


def test_lwm2m_cbor_encoding_folds_the_common_chain() -> None:
    reg = registry()
    single = encode(ContentFormat.LWM2M_CBOR, [Record(Path(3303, 0, 5700), 26.0)], registry=reg)
    assert single == bytes.fromhex("a183190ce700191644fa41d00000")  # {[3303, 0, 5700]: 26.0}
    device = encode(ContentFormat.LWM2M_CBOR, LWM2M_CBOR_RECORDS, registry=reg)
    assert cbor2.loads(device) == {
        (3, 0): {0: "Open Mobile Alliance", 6: {0: 1, 1: 5}, 9: 100, 13: 1367491215, 22: {0: "3:1"}}
    }


def test_plain_cbor_and_text_examples() -> None:
    reg = registry()
    sensor = Path(3303, 0, 5700)
    assert encode(ContentFormat.CBOR, [Record(sensor, 39.0)], registry=reg) == bytes.fromhex("fa421c0000")
    assert encode(ContentFormat.CBOR, [Record(sensor, 0.1)], registry=reg) == bytes.fromhex(
        "fb3fb999999999999a"
    )
    assert encode(ContentFormat.TEXT, [Record(sensor, 39.0)], registry=reg) == b"39.0"
    assert decode(ContentFormat.TEXT, b"39", base_path=sensor, registry=reg) == [Record(sensor, 39.0)]
    assert json.loads(encode(ContentFormat.SENML_JSON, [Record(sensor, None)], base_path=Path())) == [
        {"n": "/3303/0/5700"}
    ]
