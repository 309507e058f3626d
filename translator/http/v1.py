"""The Device Bridge v1 request body → one telemetry message of one device. Pure.

The v1 bridge (an Azure Function, https://github.com/Azure/iotc-device-bridge, IoTCIntegration/lib/engine.js)
takes `POST {"device": {"deviceId": "…", "modelId": "…"?}, "measurements": {…}, "timestamp": "…"?}` and
answers 400 with a sentence when the device is missing, its id is not an id, the measurements are not an
object, or the timestamp does not parse; the measurements become the message body as they are, the
timestamp its `iothub-creation-time-utc`. Requests v1 took keep being taken, with two deliberate
tightenings: an id must also be one IoT Hub and DPS accept (at most 128 characters and no special
character first, the rules in `translator/iotc/protocol/ids.py`), and `measurements` must be a JSON object
(v1 let an array through, which IoT Central cannot read as telemetry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from translator.iotc.protocol.ids import is_hub_device_id, is_registration_id

# v1's own rule for deviceId (letters, digits and `- . _ :`, ending in a letter, digit or dash), starting
# with a letter or digit as DPS's REST reference asks ("No special characters allowed at start or end",
# https://learn.microsoft.com/rest/api/iot-dps/device/runtime-registration/register-device): an id DPS
# refuses would be answered 200 from the outbox and never arrive.
_V1_DEVICE_ID = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._:-]*[A-Za-z0-9-])?")


class InvalidRequest(ValueError):
    """The body is not a v1 request: answered 400 with this message."""


@dataclass(frozen=True, slots=True)
class BridgeRequest:
    device_id: str
    model_id: str | None
    measurements: dict[str, Any]
    timestamp: datetime | None  # aware (UTC) when given


def parse_request(body: object) -> BridgeRequest:
    """The request in `body` (parsed JSON), or InvalidRequest saying what is wrong, in v1's order."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid format: the body must be a JSON object with a device specification.")
    device = body.get("device")
    if not isinstance(device, dict):
        raise InvalidRequest("Invalid format: a device specification must be provided.")
    device_id = device.get("deviceId")
    if not isinstance(device_id, str) or not valid_device_id(device_id):
        raise InvalidRequest(
            "Invalid format: deviceId must be 1-128 letters, digits, '-', '.', '_' or ':', "
            "starting with a letter or digit and ending in a letter, digit or '-'."
        )
    model_id = device.get("modelId")
    if model_id is not None and (not isinstance(model_id, str) or not model_id):
        raise InvalidRequest("Invalid format: if present, modelId must be a non-empty string.")
    measurements = body.get("measurements")
    if not isinstance(measurements, dict):
        raise InvalidRequest("Invalid format: measurements must be a JSON object of names to values.")
    return BridgeRequest(device_id, model_id, measurements, parse_timestamp(body.get("timestamp")))


def valid_device_id(device_id: str) -> bool:
    """v1's rule, and an id DPS and IoT Hub accept (which bounds it to 128 characters)."""
    return (
        _V1_DEVICE_ID.fullmatch(device_id) is not None
        and is_registration_id(device_id)
        and is_hub_device_id(device_id)
    )


def parse_timestamp(raw: object) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime; None when absent (v1 ignored an empty one too). A time
    without an offset is taken as UTC: the server's zone is no property of the device."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise InvalidRequest("Invalid format: if present, timestamp must be an ISO 8601 string.")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(
            "Invalid format: if present, timestamp must be ISO 8601 (e.g. 2026-01-31T12:00:00.000Z)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
