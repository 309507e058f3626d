"""IoT Hub's HTTPS device API, the one call an ephemeral device needs: send a device-to-cloud message.

`POST https://{hub}/devices/{id}/messages/events?api-version=2020-03-13`, answered 204 No Content
(https://learn.microsoft.com/rest/api/iothub/device/send-device-event). The request carries what an MQTT
device puts in its topic's property bag as headers: application properties as `iothub-app-{name}`, with the
prefix removed on arrival (same page), system properties as `iothub-messageid`, `iothub-correlationid`,
`iothub-contenttype`, `iothub-contentencoding`, and the component IoT Central files the telemetry under
as `dt-subject` — the system property `$.sub` sets over MQTT
(https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-messages-construct lists both). The
Authorization header is the device's SAS
token for `{hub}/devices/{id}`, or the device presents its X.509 certificate in TLS
(https://learn.microsoft.com/azure/iot-hub/iot-hub-dev-guide-sas).

The same checks as a CONNECT on the MQTT side apply (emulator/hub.py): the token, the device's assignment
to this hub, enabled, the hub's throttling fault and the service limits (emulator/limits.py) — which over
HTTPS answer 429 (https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling: "429
ThrottlingException"). Nothing here opens a session: `hub.online()` stays false for such a device.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from emulator.certs import peer_common_name
from emulator.hub import HubUsername
from emulator.ids import valid_device_id

if TYPE_CHECKING:
    from emulator.app import Emulator

log = logging.getLogger("emulator.https")

API_VERSIONS = frozenset({"2020-03-13", "2021-04-12", "2018-06-30"})
APP_PREFIX = "iothub-app-"
# Request header → the system property name the telemetry log uses (emulator/topics.SYSTEM_PROPERTIES).
SYSTEM_HEADERS = {
    "iothub-messageid": "messageId",
    "iothub-correlationid": "correlationId",
    "iothub-userid": "userId",
    "iothub-contenttype": "contentType",
    "iothub-contentencoding": "contentEncoding",
    "iothub-expiry": "expiryTimeUtc",
    "dt-subject": "component",
}

EMULATOR: web.AppKey[Emulator] = web.AppKey("emulator")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    # IoT Hub's error body: {"Message": "ErrorCode:...;...", "ExceptionMessage": "..."}.
    body = {"Message": f"ErrorCode:{code};{message}", "ExceptionMessage": ""}
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )


def split_headers(headers: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(system properties, application properties) of a request's headers (names compared lower-case)."""
    system: dict[str, str] = {}
    application: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(APP_PREFIX) and len(lower) > len(APP_PREFIX):
            application[name[len(APP_PREFIX) :]] = value
        elif lower in SYSTEM_HEADERS:
            system[SYSTEM_HEADERS[lower]] = value
    return system, application


async def send_event(request: web.Request) -> web.StreamResponse:
    emulator = request.app[EMULATOR]
    hub_service = emulator.hub
    device_id = request.match_info["device_id"]
    if request.query.get("api-version") not in API_VERSIONS:
        return _error(400, "InvalidProtocolVersion", "api-version is missing or not supported")
    hub = (request.host or "").rsplit(":", 1)[0].lower()
    if hub not in emulator.config.hub_names:
        return _error(404, "IotHubNotFound", f"no hub named {hub!r} here")
    if not valid_device_id(device_id):
        return _error(400, "ArgumentInvalid", "not a valid device id")
    throttled = hub_service.throttling()
    if throttled:
        return _error(429, "ThrottlingException", "throttled", {"Retry-After": str(max(1, round(throttled)))})
    peer = request.transport.get_extra_info("peercert") if request.transport is not None else None
    problem = hub_service.credentials_problem(
        HubUsername(hub, device_id, {}), request.headers.get("Authorization"), peer_common_name(peer)
    )
    if problem:
        log.warning("https %s: unauthorized: %s", device_id, problem)
        return _error(401, "IotHubUnauthorizedAccess", "Unauthorized")
    device = emulator.application.device(device_id)
    if device is None or not device.provisioned or device.assigned_hub != hub:
        return _error(404, "DeviceNotFound", f"device {device_id} is not registered on {hub}")
    if not device.enabled:
        return _error(401, "IotHubUnauthorizedAccess", "device is disabled")
    payload = await request.read()
    if len(payload) > hub_service.max_message_bytes:
        return _error(413, "MessageTooLarge", f"message of {len(payload)} bytes is over the limit")
    delay = hub_service.limits.telemetry(hub, device_id)
    if delay is None:
        # Over MQTT the hub ends the connection; over HTTPS it answers the request.
        return _error(429, "ThrottlingException", "over the device-to-cloud send rate", {"Retry-After": "1"})
    system, application = split_headers(dict(request.headers))
    # Only a device's first connection assigns its template (hub.py); an HTTPS device's first send does.
    emulator.assign_template(device, device.model_id)
    hub_service.record_event(
        device,
        hub,
        topic=f"devices/{device_id}/messages/events",
        system=system,
        application_properties=application,
        payload=payload,
    )
    if delay:
        await asyncio.sleep(delay)  # traffic shaping: the answer is held back as a PUBACK would be
    return web.Response(status=204)


def build_device_app(emulator: Emulator) -> web.Application:
    app = web.Application(client_max_size=hub_limit(emulator))
    app[EMULATOR] = emulator
    app.add_routes([web.post("/devices/{device_id}/messages/events", send_event)])
    return app


def hub_limit(emulator: Emulator) -> int:
    # Room for the hub's own 256 KB check to answer 413 rather than aiohttp's generic one.
    return emulator.config.max_message_bytes + 1024
