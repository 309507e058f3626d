"""The Things Stack (The Things Network v3) uplink webhook body → the v1 bridge's request. Pure.

The uplink message (https://www.thethingsindustries.com/docs/the-things-stack/concepts/data-formats/) names
its device in `end_device_ids.device_id` (unique within a TTN application; lowercase letters, digits and
dashes, so already a valid IoT Central id), carries what the application's payload formatter decoded in
`uplink_message.decoded_payload`, and its times in `uplink_message.received_at` (the Network Server's, the
closest to the radio) and `received_at` (the Application Server's). A plain mapping: the ingress transforms
(computed telemetry, enrichment, drop/rename; `http.transforms`, docs/codec.md) run on every request's
measurements further on, per device (`translator/bridge/http_ingest.py`).
"""

from __future__ import annotations

from translator.http.v1 import BridgeRequest, InvalidRequest, parse_request


def ttn_uplink_request(body: object, *, model_id: str | None = None) -> BridgeRequest:
    """The v1 request an uplink message stands for (`model_id`: the webhook's `?modelId=`, as TTN has
    none), or InvalidRequest saying what is missing."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            "Invalid format: the body must be a The Things Stack uplink message (JSON object)."
        )
    ids = body.get("end_device_ids")
    device_id = ids.get("device_id") if isinstance(ids, dict) else None
    if not isinstance(device_id, str):
        raise InvalidRequest("Invalid format: end_device_ids.device_id is missing.")
    uplink = body.get("uplink_message")
    if not isinstance(uplink, dict):
        raise InvalidRequest(
            "Invalid format: no uplink_message (only the webhook's uplink message type is taken here)."
        )
    decoded = uplink.get("decoded_payload")
    if not isinstance(decoded, dict):
        raise InvalidRequest(
            "Invalid format: uplink_message.decoded_payload is missing: give the device or application "
            "a payload formatter."
        )
    device: dict[str, object] = {"deviceId": device_id}
    if model_id:
        device["modelId"] = model_id
    return parse_request(
        {
            "device": device,
            "measurements": decoded,
            "timestamp": uplink.get("received_at") or body.get("received_at"),
        }
    )
