"""The v1 bridge's request rules (translator/http/v1.py): what it takes, and each 400 with its reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.http.samples import TTN_UPLINK
from translator.http.ttn import ttn_uplink_request
from translator.http.v1 import InvalidRequest, parse_request, valid_device_id


def body(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"device": {"deviceId": "dev-1"}, "measurements": {"temp": 21.5}}
    request.update(overrides)
    return request


def test_a_full_request() -> None:
    parsed = parse_request(
        body(
            device={"deviceId": "Dev_1:a.b-", "modelId": "dtmi:acme:sensor;1"},
            measurements={"temp": 21.5, "state": "on", "nested": {"x": 1}},
            timestamp="2026-01-31T12:00:00.250+01:00",
        )
    )
    assert parsed.device_id == "Dev_1:a.b-"
    assert parsed.model_id == "dtmi:acme:sensor;1"
    assert parsed.measurements == {"temp": 21.5, "state": "on", "nested": {"x": 1}}
    assert parsed.timestamp == datetime(2026, 1, 31, 11, 0, 0, 250_000, tzinfo=UTC)


def test_optional_parts() -> None:
    parsed = parse_request(body(timestamp=""))
    assert (parsed.model_id, parsed.timestamp) == (None, None)
    assert parse_request(body(timestamp="2026-01-31")).timestamp == datetime(2026, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("request_body", "reason"),
    [
        ([], "JSON object"),
        ({"measurements": {}}, "device specification"),
        (body(device="dev-1"), "device specification"),
        (body(device={}), "deviceId"),
        (body(device={"deviceId": 7}), "deviceId"),
        (body(device={"deviceId": ""}), "deviceId"),
        (body(device={"deviceId": "dev.1."}), "deviceId"),  # v1: must end in a letter, digit or dash
        (body(device={"deviceId": "dev 1"}), "deviceId"),
        (body(device={"deviceId": "-dev1"}), "deviceId"),  # DPS: no special character first
        (body(device={"deviceId": "dév"}), "deviceId"),
        (body(device={"deviceId": "a" * 129}), "deviceId"),  # IoT Hub and DPS: at most 128
        (body(device={"deviceId": "dev-1", "modelId": 3}), "modelId"),
        ({"device": {"deviceId": "dev-1"}}, "measurements"),
        (body(measurements=None), "measurements"),
        (body(measurements=[1, 2]), "measurements"),
        (body(measurements=21.5), "measurements"),
        (body(measurements="temp=21.5"), "measurements"),
        (body(timestamp="yesterday"), "timestamp"),
        (body(timestamp=1700000000), "timestamp"),
    ],
)
def test_refused(request_body: object, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        parse_request(request_body)


def test_device_id_rule() -> None:
    assert valid_device_id("a" * 128)
    assert valid_device_id("urn:dev:ow-10e2073a0108006")
    assert not valid_device_id("dev_")
    assert valid_device_id("a") and valid_device_id("A-")
    assert not valid_device_id(".a")
    assert not valid_device_id("dev@1")  # IoT Hub would take it, v1 and DPS do not


def test_ttn_uplink() -> None:
    parsed = ttn_uplink_request(TTN_UPLINK, model_id="dtmi:acme:lora;1")
    assert parsed.device_id == "eui-0004a30b001c0530"
    assert parsed.model_id == "dtmi:acme:lora;1"
    assert parsed.measurements == {"temperature": 21.5, "humidity": 40}
    # The Network Server's time (closest to the radio), to the microsecond.
    assert parsed.timestamp == datetime(2026, 2, 12, 15, 15, 45, 787654, tzinfo=UTC)
    uplink = {k: v for k, v in TTN_UPLINK["uplink_message"].items() if k != "received_at"}
    assert ttn_uplink_request({**TTN_UPLINK, "uplink_message": uplink}).timestamp == datetime(
        2026, 2, 12, 15, 15, 46, 123456, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("uplink", "reason"),
    [
        ({**TTN_UPLINK, "end_device_ids": {}}, "device_id"),
        ({k: v for k, v in TTN_UPLINK.items() if k != "uplink_message"}, "uplink_message"),
        ({**TTN_UPLINK, "uplink_message": {"frm_payload": "AQI="}}, "payload formatter"),
        ([TTN_UPLINK], "uplink message"),
    ],
)
def test_ttn_refused(uplink: object, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        ttn_uplink_request(uplink)
