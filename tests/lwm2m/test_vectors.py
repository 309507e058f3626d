"""Every content-format payload captured from Wakaama and Anjay decodes to what the capture implies."""

from __future__ import annotations

from typing import Any

import pytest

from translator.lwm2m import (
    ROOT,
    ContentFormat,
    ObjLink,
    Path,
    Record,
    Value,
    decode,
)
from translator.lwm2m.formats import SUPPORTED_FORMATS
from translator.lwm2m.formats._cbor import loads as cbor_loads

from .support import at, registry, typed, vector, vectors, vectors_if_present

NOW = 1_800_000_000.0


def base_path(v: dict[str, Any]) -> Path:
    # Send (/dp) and composite operations (/) carry absolute names.
    return ROOT if v["path"] == "/dp" else Path.parse(v["path"])


def decode_vector(v: dict[str, Any], **kwargs: Any) -> list[Record]:
    options: dict[str, Any] = {"base_path": base_path(v), "registry": registry(), "now": NOW}
    options.update(kwargs)
    return decode(v["content_format"], bytes.fromhex(v["payload_hex"]), **options)


def as_dict(records: list[Record]) -> dict[str, Value | None]:
    return {str(r.path): r.value for r in records}


def decodable(captures: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [v for v in captures if v["content_format"] in SUPPORTED_FORMATS and v["payload_hex"]]


def test_vector_file_has_every_format() -> None:
    captures = vectors()  # skips without the reference material
    assert {v["content_format"] for v in decodable(captures)} == {0, 60, 110, 112, 11542, 11543, 11544}
    assert len(decodable(captures)) >= 70


@pytest.mark.parametrize(
    "v", decodable(vectors_if_present()), ids=lambda v: f"{v['exchange']}-{v['mid']}-{v['content_format']}"
)
def test_every_payload_decodes(v: dict[str, Any]) -> None:
    records = decode_vector(v)
    assert records
    for r in records:
        assert r.path.startswith(base_path(v))
        if v["method_or_code"] == "FETCH":
            assert r.value is None  # composite request: names only
        else:
            assert r.value is not None and len(r.path) >= 3
    # The guarded CBOR reader sees exactly what the capture's own cbor2 decoding showed.
    diag = v.get("payload_cbor_diag")
    if diag is not None:
        assert repr(cbor_loads(bytes.fromhex(v["payload_hex"]), "test")) == diag


WAKAAMA_DEVICE = {
    "/3/0/0": "Open Mobile Alliance",
    "/3/0/1": "Lightweight M2M Client",
    "/3/0/2": "345000123",
    "/3/0/3": "1.0",
    "/3/0/6/0": 1,
    "/3/0/6/1": 5,
    "/3/0/7/0": 3800,
    "/3/0/7/1": 5000,
    "/3/0/8/0": 125,
    "/3/0/8/1": 900,
    "/3/0/9": 100,
    "/3/0/10": 15,
    "/3/0/11/0": 0,
    "/3/0/13": at(3163177300),
    "/3/0/14": "+01:00",
    "/3/0/15": "Europe/Berlin",
    "/3/0/16": "U",
}


@pytest.mark.parametrize("exchange", ["wakaama-02", "wakaama-03", "wakaama-04"])
def test_wakaama_device_read_tlv_senml_json(exchange: str) -> None:
    assert typed(as_dict(decode_vector(vector(exchange)))) == typed(WAKAAMA_DEVICE)


def test_wakaama_tlv_second_read_differs_only_in_time() -> None:
    second = as_dict(decode_vector(vector("wakaama-06")))
    assert second.pop("/3/0/13") == at(3163177301)
    expected = dict(WAKAAMA_DEVICE)
    del expected["/3/0/13"]
    assert second == expected


def test_wakaama_single_and_multiple_resource() -> None:
    assert typed(decode_vector(vector("wakaama-07"))) == typed([Record(Path(3, 0, 9), 100)])  # text "100"
    assert typed(decode_vector(vector("wakaama-08"))) == typed([Record(Path(3, 0, 9), 100)])  # TLV c10964
    assert as_dict(decode_vector(vector("wakaama-10"))) == {"/3/0/6/0": 1, "/3/0/6/1": 5}  # TLV 86...
    assert as_dict(decode_vector(vector("wakaama-11"))) == {"/3/0/6/0": 1, "/3/0/6/1": 5}  # SenML


def test_wakaama_send_and_notifications() -> None:
    send = decode_vector(vector("wakaama-28"))
    assert send == [Record(Path(3, 0, 9), 35), Record(Path(3, 0, 0), "Open Mobile Alliance")]
    battery = [as_dict(decode_vector(vector("wakaama-27", index=i)))["/3/0/9"] for i in range(3)]
    assert battery == [17, 33, 34]
    assert [decode_vector(vector("wakaama-26", index=i))[0].value for i in range(3)] == [100, 42, 17]


def test_wakaama_requests_it_received() -> None:
    fetch = decode_vector(vector("wakaama-24", "server->client"))
    assert fetch == [Record(Path(3, 0, 0), None), Record(Path(3, 0, 9), None)]
    write = decode_vector(vector("wakaama-20", "server->client"))
    assert write == [Record(Path(3, 0, 14), "+03:00")]
    create = decode_vector(vector("wakaama-30", "server->client"))
    assert create == [Record(Path(31024, 5, 1), 7)]  # unknown object: the value stays as sent


ANJAY_DEVICE = {
    "/3/0/0": "anjay",
    "/3/0/1": "demo-client",
    "/3/0/2": "ep",
    "/3/0/3": "3.14.0",
    "/3/0/6/0": 0,
    "/3/0/7/0": 32223,
    "/3/0/8/0": 11,
    "/3/0/9": 0,
    "/3/0/10": 0,
    "/3/0/11/0": 0,
    "/3/0/13": at(1795686118),
    "/3/0/14": "+01:00",
    "/3/0/15": "Europe/Warsaw",
    "/3/0/16": "UQ",
    "/3/0/17": "",
    "/3/0/18": "",
    "/3/0/19": "",
    "/3/0/20": 0,
    "/3/0/21": 0,
    "/3/0/22/0": ObjLink(33606, 0),
}


@pytest.mark.parametrize("exchange", ["anjay-04", "anjay-05", "anjay-06", "anjay-07", "anjay-08", "anjay-09"])
def test_anjay_device_read_in_every_format(exchange: str) -> None:
    assert typed(as_dict(decode_vector(vector(exchange)))) == typed(ANJAY_DEVICE)


def temperature(sensor: float, max_measured: float) -> dict[str, Value | None]:
    return {
        "/3303/0/5601": 13.0,
        "/3303/0/5602": max_measured,
        "/3303/0/5603": 0.0,
        "/3303/0/5604": 42.0,
        "/3303/0/5700": sensor,
        "/3303/0/5701": "Cel",
    }


def test_anjay_temperature_reads() -> None:
    assert typed(as_dict(decode_vector(vector("anjay-12")))) == typed(temperature(26.0, 26.0))  # SenML CBOR
    assert typed(as_dict(decode_vector(vector("anjay-13")))) == typed(
        temperature(26.0, 26.0)
    )  # SenML JSON, "v":26
    for exchange in ("anjay-14", "anjay-15", "anjay-16"):  # TLV float32, LwM2M CBOR, SenML CBOR
        assert typed(as_dict(decode_vector(vector(exchange)))) == typed(temperature(39.0, 39.0))
    for r in decode_vector(vector("anjay-13")):
        if r.path[2] != 5701:
            assert type(r.value) is float  # JSON integers typed by the Float model


def test_anjay_single_resource_formats() -> None:
    sensor = [Record(Path(3303, 0, 5700), 39.0)]
    assert typed(decode_vector(vector("anjay-17"))) == typed(sensor)  # CBOR float32
    assert typed(decode_vector(vector("anjay-18"))) == typed(sensor)  # LwM2M CBOR {[3303,0,5700]: 39.0}
    assert typed(decode_vector(vector("anjay-19"))) == typed(sensor)  # text "39"
    assert typed(decode_vector(vector("anjay-21"))) == typed([Record(Path(3303, 0, 5701), "Cel")])
    assert typed(decode_vector(vector("anjay-v1.0-03"))) == typed([Record(Path(1, 1, 7), "UQ")])


def test_protocols_card_lwm2m_cbor_example() -> None:
    payload = bytes.fromhex("bf83190ce700191644fa41d00000ff")
    expected = [Record(Path(3303, 0, 5700), 26.0)]
    assert decode(ContentFormat.LWM2M_CBOR, payload, registry=registry()) == expected
    assert decode(ContentFormat.LWM2M_CBOR, payload) == expected


def test_anjay_observe_times_from_bt() -> None:
    notifications = [decode_vector(vector("anjay-28", index=i)) for i in range(3)]
    for records, bt in zip(
        notifications, (1795686123.2957413, 1795686124.0001132, 1795686125.0001123), strict=True
    ):
        assert {r.time for r in records} == {bt}  # bt on the first record applies to all
    assert [as_dict(n)["/3303/0/5700"] for n in notifications] == [5.0, 18.0, 31.0]


def test_anjay_composite_and_send() -> None:
    request = decode_vector(vector("anjay-23", "server->client"))
    assert request == [Record(Path(3, 0, 0), None), Record(Path(3303, 0), None)]
    answer = as_dict(decode_vector(vector("anjay-23")))
    assert answer == {"/3/0/0": "anjay", **temperature(39.0, 39.0)}
    observed = decode_vector(vector("anjay-29"))
    assert [(str(r.path), r.value) for r in observed] == [("/3/0/9", 0), ("/3303/0/5700", 31.0)]
    send = decode_vector(vector("anjay-30"))
    assert send == [
        Record(Path(3303, 0, 5700), 40.0, 1795686129.2005243),
        Record(Path(3, 0, 0), "anjay", 1795686129.2005243),
    ]


def test_anjay_writes_it_received() -> None:
    assert typed(decode_vector(vector("anjay-35", "server->client"))) == typed(
        [Record(Path(3, 0, 15), "Europe/Paris")]
    )
    assert typed(decode_vector(vector("anjay-37", "server->client"))) == typed(
        [Record(Path(3, 0, 14), "+05:00")]
    )


def test_without_registry_values_stay_as_the_format_gives_them() -> None:
    assert typed(decode_vector(vector("wakaama-07"), registry=None)) == typed([Record(Path(3, 0, 9), "100")])
    assert typed(decode_vector(vector("wakaama-08"), registry=None)) == typed(
        [Record(Path(3, 0, 9), b"\x64")]
    )
    assert as_dict(decode_vector(vector("anjay-13"), registry=None))["/3303/0/5700"] == 26
    assert as_dict(decode_vector(vector("anjay-05"), registry=None))["/3/0/22/0"] == ObjLink(33606, 0)
    assert as_dict(decode_vector(vector("anjay-08"), registry=None))["/3/0/22/0"] == "33606:0"
