"""A REST API shaped like IoT Central's data-plane API, plus test and fault-injection endpoints.

IoT Central paths (`/api/...`): devices, properties (PATCH of a writable property becomes a desired patch),
last telemetry value, commands (direct methods, or queued cloud-to-device messages), and the
`components/{component}/...` forms. Emulator paths (`/emulator/...`): application info, the telemetry log,
and faults.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.hub import MethodError, component_patch
from emulator.ids import valid_device_id
from emulator.sas import derive_device_key
from emulator.state import COMPONENT_MARKER, Device, utc_now_iso

if TYPE_CHECKING:
    from emulator.app import Emulator

log = logging.getLogger("emulator.rest")

EMULATOR_KEY: web.AppKey[Emulator] = web.AppKey("emulator")
MAX_WAIT = 60.0  # seconds a test may long-poll the telemetry log


def _error(status: int, code: str, message: str) -> web.Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "requestId": str(uuid.uuid4()),
            "time": utc_now_iso(),
        }
    }
    return web.json_response(body, status=status)


def _emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR_KEY]


def _device(request: web.Request) -> Device:
    device = _emulator(request).application.device(request.match_info["device_id"])
    if device is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": {"code": "NotFound", "message": "Device not found"}}),
            content_type="application/json",
        )
    return device


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"code": "BadRequest", "message": "Body is not JSON"}}),
            content_type="application/json",
        ) from None


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    token = _emulator(request).config.api_token
    if token and request.headers.get("Authorization") != token:
        return _error(401, "Unauthorized", "Missing or wrong Authorization header")
    response: web.StreamResponse = await handler(request)
    return response


# -- devices ------------------------------------------------------------------------------------------


async def list_devices(request: web.Request) -> web.Response:
    devices = _emulator(request).application.devices.values()
    return web.json_response({"value": [device.api_view() for device in devices]})


async def get_device(request: web.Request) -> web.Response:
    return web.json_response(_device(request).api_view())


async def put_device(request: web.Request) -> web.Response:
    """Create or update a device; `enabled: false` blocks it (DPS then answers 400209)."""
    emulator = _emulator(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        return _error(400, "BadRequest", "Body must be an object")
    if not valid_device_id(request.match_info["device_id"]):
        return _error(400, "BadRequest", "Invalid device id")
    device = emulator.application.ensure_device(request.match_info["device_id"])
    if isinstance(body.get("displayName"), str):
        device.display_name = body["displayName"]
    if isinstance(body.get("template"), str):
        device.model_id = body["template"]
    if isinstance(body.get("enabled"), bool):
        device.enabled = body["enabled"]
        if not device.enabled:
            emulator.hub.disconnect(device.device_id, "device disabled")
    emulator.changed()
    return web.json_response(device.api_view())


async def delete_device(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    device = _device(request)
    emulator.hub.disconnect(device.device_id, "device deleted")
    del emulator.application.devices[device.device_id]
    emulator.changed()
    return web.Response(status=204)


async def get_credentials(request: web.Request) -> web.Response:
    application = _emulator(request).application
    device = _device(request)
    return web.json_response(
        {
            "idScope": application.id_scope,
            "symmetricKey": {
                "primaryKey": derive_device_key(application.group_primary_key, device.device_id),
                "secondaryKey": derive_device_key(application.group_secondary_key, device.device_id),
            },
        }
    )


# -- properties -------------------------------------------------------------------------------------


def _property_view(device: Device, component: str | None) -> dict[str, Any]:
    """Reported values; `$metadata` gives each writable property's desired value and acknowledgement."""
    reported = device.twin.reported
    desired = device.twin.desired
    if component is not None:
        reported = reported.get(component, {}) if isinstance(reported.get(component), dict) else {}
        desired = desired.get(component, {}) if isinstance(desired.get(component), dict) else {}
    view: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for name, value in reported.items():
        if name == COMPONENT_MARKER:
            continue
        is_ack = isinstance(value, dict) and "ac" in value and "value" in value
        if component is None and isinstance(value, dict) and value.get(COMPONENT_MARKER) == "c":
            view[name] = _property_view(device, name)
            continue
        view[name] = value["value"] if is_ack else value
        if is_ack:
            metadata[name] = {
                "ackCode": value.get("ac"),
                "ackVersion": value.get("av"),
                "ackDescription": value.get("ad"),
            }
    for name, value in desired.items():
        if name == COMPONENT_MARKER or name.startswith("$"):
            continue
        if component is None and isinstance(value, dict) and value.get(COMPONENT_MARKER) == "c":
            view.setdefault(name, _property_view(device, name))
            continue
        entry = metadata.setdefault(name, {})
        entry["desiredValue"] = value
        entry["desiredVersion"] = device.twin.desired_version
    if component is not None:
        view[COMPONENT_MARKER] = "c"
    if metadata:
        view["$metadata"] = metadata
    return view


async def get_properties(request: web.Request) -> web.Response:
    component = request.match_info.get("component")
    return web.json_response(_property_view(_device(request), component))


async def patch_properties(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    device = _device(request)
    component = request.match_info.get("component")
    body = await _json_body(request)
    if not isinstance(body, dict) or not body or any(name.startswith("$") for name in body):
        return _error(400, "BadRequest", "Body must be an object of property names to values")
    patch = component_patch(component, body)
    if component is None:
        # Root-form patches may address components too; IoT Central adds their marker.
        for name, value in list(patch.items()):
            if isinstance(value, dict) and value.get(COMPONENT_MARKER) == "c":
                patch[name] = dict(value)
    emulator.hub.update_desired(device, patch)
    return web.json_response(body, status=202)


# -- telemetry --------------------------------------------------------------------------------------


async def get_telemetry_value(request: web.Request) -> web.Response:
    device = _device(request)
    component = request.match_info.get("component")
    name = request.match_info["name"]
    entry = device.telemetry.get(f"{component}/{name}" if component else name)
    if entry is None:
        return _error(404, "NotFound", f"No value of telemetry {name!r} yet")
    return web.json_response(entry)


async def telemetry_log(request: web.Request) -> web.Response:
    """Telemetry after `after` (a sequence number), optionally for one device; `wait` long-polls seconds."""
    hub = _emulator(request).hub
    try:
        after = int(request.query.get("after", "0"))
        wait = min(float(request.query.get("wait", "0")), MAX_WAIT)
    except ValueError:
        return _error(400, "BadRequest", "after and wait must be numbers")
    device_id = request.query.get("deviceId")
    deadline = time.monotonic() + wait
    events = hub.telemetry.since(after, device_id)
    while not events and time.monotonic() < deadline:
        arrived = hub.telemetry.arrived
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                await arrived.wait()
        except TimeoutError:
            break
        events = hub.telemetry.since(after, device_id)
    return web.json_response(
        {"value": [event.view() for event in events], "next": hub.telemetry.next_sequence - 1}
    )


# -- commands ---------------------------------------------------------------------------------------


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"code": "BadRequest", "message": f"{name} must be a number"}}),
            content_type="application/json",
        )
    return float(value)


async def run_command(request: web.Request) -> web.Response:
    """Run a command as a direct method; `?queued=true` (or `"queued": true`) sends it as an offline
    command instead: a cloud-to-device message with the `method-name` property, delivered when the device
    is next connected."""
    emulator = _emulator(request)
    device = _device(request)
    component = request.match_info.get("component")
    command = request.match_info["name"]
    method = f"{component}*{command}" if component else command
    body = await _json_body(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        return _error(400, "BadRequest", "Body must be an object")
    command_id = str(uuid.uuid4())
    queued = request.query.get("queued", "").lower() == "true" or body.get("queued") is True
    if queued:
        message = emulator.hub.enqueue_c2d(device, json.dumps(body.get("request")), {"method-name": method})
        return web.json_response(
            {
                "id": command_id,
                "request": body.get("request"),
                "queued": True,
                "messageId": message.message_id,
            },
            status=202,
        )
    response_timeout = _number(body, "responseTimeout", emulator.config.method_timeout)
    connection_timeout = _number(body, "connectionTimeout", 0)
    result: dict[str, Any] = {
        "id": command_id,
        "connectionTimeout": connection_timeout,
        "responseTimeout": response_timeout,
        "request": body.get("request"),
    }
    try:
        status, payload = await emulator.hub.invoke_method(
            device.device_id,
            method,
            body.get("request"),
            response_timeout=min(response_timeout, emulator.config.method_timeout),
            connect_timeout=connection_timeout,
        )
    except MethodError as error:
        # IoT Central answers a command the device did not take with 408 RequestTimeout.
        return _error(
            408, "RequestTimeout", f"Request timeout waiting for the device: {error} ({error.code})"
        )
    result.update({"response": payload, "responseCode": status})
    return web.json_response(result, status=201)


# -- emulator: info and faults ------------------------------------------------------------------------


async def info(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    return web.json_response(emulator.info())


async def _fault_body(request: web.Request) -> dict[str, Any]:
    body = await _json_body(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be an object")
    return body


async def fault_disconnect(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    device_id = request.match_info["device_id"]
    dropped = emulator.hub.disconnect(device_id, "dropped by fault injection")
    return web.json_response({"dropped": int(dropped)})


async def fault_disconnect_all(request: web.Request) -> web.Response:
    return web.json_response({"dropped": _emulator(request).drop_all("dropped by fault injection")})


async def fault_throttle(request: web.Request) -> web.Response:
    body = await _fault_body(request)
    seconds = _number(body, "seconds", 10)
    scope = body.get("scope", "all")
    if scope not in ("dps", "hub", "all"):
        return _error(400, "BadRequest", "scope is dps, hub or all")
    _emulator(request).throttle(seconds, scope)
    return web.json_response({"seconds": seconds, "scope": scope})


async def fault_delay_acks(request: web.Request) -> web.Response:
    body = await _fault_body(request)
    seconds = _number(body, "seconds", 10)
    _emulator(request).delay_acks(seconds)
    return web.json_response({"seconds": seconds})


async def fault_expire_tokens(request: web.Request) -> web.Response:
    return web.json_response({"dropped": _emulator(request).expire_tokens()})


async def fault_move(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    device = _device(request)
    body = await _fault_body(request)
    hub = body.get("hub")
    try:
        new_hub = emulator.move_device(device, hub if isinstance(hub, str) else None)
    except ValueError as error:
        return _error(400, "BadRequest", str(error))
    return web.json_response({"assignedHub": new_hub})


async def fault_outage(request: web.Request) -> web.Response:
    body = await _fault_body(request)
    seconds = _number(body, "seconds", 10)
    await _emulator(request).outage(seconds)
    return web.json_response({"seconds": seconds})


async def fault_clear(request: web.Request) -> web.Response:
    await _emulator(request).clear_faults()
    return web.json_response({})


def build_app(emulator: Emulator) -> web.Application:
    app = web.Application(middlewares=[_auth], client_max_size=1024 * 1024)
    app[EMULATOR_KEY] = emulator
    device = "/api/devices/{device_id}"
    component = device + "/components/{component}"
    app.add_routes(
        [
            web.get("/api/devices", list_devices),
            web.get(device, get_device),
            web.put(device, put_device),
            web.patch(device, put_device),
            web.delete(device, delete_device),
            web.get(device + "/credentials", get_credentials),
            web.get(device + "/properties", get_properties),
            web.patch(device + "/properties", patch_properties),
            web.get(component + "/properties", get_properties),
            web.patch(component + "/properties", patch_properties),
            web.get(device + "/telemetry/{name}", get_telemetry_value),
            web.get(component + "/telemetry/{name}", get_telemetry_value),
            web.post(device + "/commands/{name}", run_command),
            web.post(component + "/commands/{name}", run_command),
            web.get("/emulator/info", info),
            web.get("/emulator/telemetry", telemetry_log),
            web.post("/emulator/faults/disconnect/{device_id}", fault_disconnect),
            web.post("/emulator/faults/disconnect-all", fault_disconnect_all),
            web.post("/emulator/faults/throttle", fault_throttle),
            web.post("/emulator/faults/expire-tokens", fault_expire_tokens),
            web.post("/emulator/faults/delay-acks", fault_delay_acks),
            web.post("/emulator/faults/move/{device_id}", fault_move),
            web.post("/emulator/faults/outage", fault_outage),
            web.post("/emulator/faults/clear", fault_clear),
        ]
    )
    return app
