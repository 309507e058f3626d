"""A REST API shaped like IoT Central's 2022-07-31 data-plane API, plus test and fault-injection endpoints.

IoT Central paths (`/api/...`, checked by `rest_guard`): devices, components, properties (writes become
desired patches), last telemetry value, commands (direct methods, or queued cloud-to-device messages) and
their history, device templates, and the `components/{component}/...` forms. Emulator paths
(`/emulator/...`): application info, the telemetry log, and faults.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator import property_views, relationships, rest_approval, rest_relationships, templates
from emulator.hub import MethodError
from emulator.ids import valid_device_id
from emulator.limits import LimitExceeded
from emulator.rest_guard import ApiError, RequestRate, error_response, guard
from emulator.sas import derive_device_key
from emulator.state import Device

if TYPE_CHECKING:
    from emulator.app import Emulator

log = logging.getLogger("emulator.rest")

EMULATOR_KEY: web.AppKey[Emulator] = web.AppKey("emulator")
MAX_WAIT = 60.0  # seconds a test may long-poll the telemetry log


@web.middleware
async def _limits(request: web.Request, handler: Any) -> web.StreamResponse:
    """A request over a documented service limit gets the service's answer (emulator/limits.py)."""
    try:
        response: web.StreamResponse = await handler(request)
    except LimitExceeded as error:
        return error_response(error.status, error.code, str(error))
    return response


def _emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR_KEY]


def _device(request: web.Request) -> Device:
    device = _emulator(request).application.device(request.match_info["device_id"])
    if device is None:
        raise ApiError(404, "NotFound", "Device not found")
    return device


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise ApiError(400, "BadRequest", "Body is not JSON") from None


def _check_etag(request: web.Request, current: str) -> None:
    """`If-Match` with another etag: 412, as IoT Central answers a stale update."""
    wanted = request.headers.get("If-Match")
    if wanted is not None and wanted not in ("*", current):
        raise ApiError(412, "PreconditionFailed", f"etag {wanted} does not match the current {current}")


def _template_of(request: web.Request, device: Device) -> dict[str, Any] | None:
    return _emulator(request).application.templates.get(device.template) if device.template else None


# -- devices ------------------------------------------------------------------------------------------


async def list_devices(request: web.Request) -> web.Response:
    devices = _emulator(request).application.devices.values()
    return web.json_response({"value": [device.api_view() for device in devices]})


async def get_device(request: web.Request) -> web.Response:
    return web.json_response(_device(request).api_view())


async def put_device(request: web.Request) -> web.Response:
    """Create or update a device; `enabled: false` blocks it, `true` approves or unblocks it (DPS answers a
    device not enabled 401 with 400209, emulator/approval.py)."""
    emulator = _emulator(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise ApiError(422, "InvalidBody", "Body must be an object")
    if not valid_device_id(request.match_info["device_id"]):
        raise ApiError(400, "BadRequest", "Invalid device id")
    existing = emulator.application.device(request.match_info["device_id"])
    if existing is not None:
        _check_etag(request, existing.etag())
    for name, kind in (("displayName", str), ("template", str), ("enabled", bool)):
        if name in body and not isinstance(body[name], kind):
            raise ApiError(422, "InvalidBody", f"{name} must be a {kind.__name__}")
    device = emulator.application.ensure_device(request.match_info["device_id"])
    if isinstance(body.get("displayName"), str):
        device.display_name = body["displayName"]
    if isinstance(body.get("template"), str):
        device.template = body["template"]
        device.template_decided = True
    if isinstance(body.get("enabled"), bool):
        device.enabled = body["enabled"]
        if not device.enabled:
            emulator.hub.disconnect(device.device_id, "device disabled")
    device.revision += 1
    emulator.changed()
    return web.json_response(device.api_view())


async def delete_device(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    device = _device(request)
    _check_etag(request, device.etag())
    emulator.hub.disconnect(device.device_id, "device deleted")
    del emulator.application.devices[device.device_id]
    relationships.forget_device(emulator.application.relationships, device.device_id)
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


async def list_components(request: web.Request) -> web.Response:
    device = _device(request)
    template = _template_of(request, device)
    return web.json_response({"value": templates.components(template) if template else []})


# -- device templates ---------------------------------------------------------------------------------


async def list_templates(request: web.Request) -> web.Response:
    return web.json_response({"value": list(_emulator(request).application.templates.values())})


async def get_template(request: web.Request) -> web.Response:
    template = _emulator(request).application.templates.get(request.match_info["template_id"])
    if template is None:
        raise ApiError(404, "NotFound", "Device template not found")
    return web.json_response(template)


async def put_template(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    template_id = request.match_info["template_id"]
    body = await _json_body(request)
    existing = emulator.application.templates.get(template_id)
    if existing is not None:
        _check_etag(request, existing["etag"])
    problem = templates.template_problem(template_id, body)
    if problem:
        raise ApiError(422, "InvalidBody", problem)
    stored = emulator.publish_template(template_id, body)
    return web.json_response(stored)


async def delete_template(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    template_id = request.match_info["template_id"]
    if template_id not in emulator.application.templates:
        raise ApiError(404, "NotFound", "Device template not found")
    if any(device.template == template_id for device in emulator.application.devices.values()):
        raise ApiError(409, "Conflict", "Devices are assigned to this template")
    del emulator.application.templates[template_id]
    emulator.changed()
    return web.Response(status=204)


# -- properties -------------------------------------------------------------------------------------


async def get_properties(request: web.Request) -> web.Response:
    device = _device(request)
    components = templates.component_names(_template_of(request, device))
    component = request.match_info.get("component")
    return web.json_response(property_views.property_view(device.twin, component, components))


async def _write_properties(request: web.Request, *, replace: bool) -> web.Response:
    emulator = _emulator(request)
    device = _device(request)
    component = request.match_info.get("component")
    body = await _json_body(request)
    if not isinstance(body, dict) or not body or any(name.startswith("$") for name in body):
        raise ApiError(422, "InvalidBody", "Body must be an object of property names to values")
    components = templates.component_names(_template_of(request, device))
    values = property_views.replacement(device.twin, component, body, components) if replace else body
    patch = property_views.desired_patch(component, values, components)
    emulator.hub.update_desired(device, patch)
    return web.json_response(property_views.write_response(component, body, components), status=202)


async def patch_properties(request: web.Request) -> web.Response:
    return await _write_properties(request, replace=False)


async def put_properties(request: web.Request) -> web.Response:
    return await _write_properties(request, replace=True)


# -- telemetry --------------------------------------------------------------------------------------


async def get_telemetry_value(request: web.Request) -> web.Response:
    device = _device(request)
    component = request.match_info.get("component")
    name = request.match_info["name"]
    entry = device.telemetry.get(f"{component}/{name}" if component else name)
    if entry is None:
        raise ApiError(404, "NotFound", f"No value of telemetry {name!r} yet")
    return web.json_response(entry)


async def telemetry_log(request: web.Request) -> web.Response:
    """Telemetry after `after` (a sequence number), optionally for one device; `wait` long-polls seconds."""
    hub = _emulator(request).hub
    try:
        after = int(request.query.get("after", "0"))
        wait = min(float(request.query.get("wait", "0")), MAX_WAIT)
    except ValueError:
        return error_response(400, "BadRequest", "after and wait must be numbers")
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


def _seconds(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """A command timeout: an integer number of seconds in IoT Central's range, else 422."""
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ApiError(422, "InvalidBody", f"{name} must be an integer from {low} to {high} (seconds)")
    return value


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ApiError(400, "BadRequest", f"{name} must be a number")
    return float(value)


def offline_payload(body: dict[str, Any]) -> str:
    """The body of an offline command's cloud-to-device message: the request value as IoT Central sends
    it — a string raw (unquoted), other values as JSON, nothing for a command without request."""
    if "request" not in body:
        return ""
    request = body["request"]
    return request if isinstance(request, str) else json.dumps(request)


async def run_command(request: web.Request) -> web.Response:
    """Run a command (https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/run-command):
    a direct method while the device is connected. To an offline device, a command its template marks
    "Queue if offline" (`durable`) becomes a cloud-to-device message with the `method-name` property
    (https://learn.microsoft.com/azure/iot-central/core/howto-use-commands#offline-commands); others fail.
    `?queued=true` is the emulator's own alias forcing the queued form; IoT Central has no such parameter."""
    emulator = _emulator(request)
    device = _device(request)
    component = request.match_info.get("component")
    command = request.match_info["name"]
    method = f"{component}*{command}" if component else command
    body = await _json_body(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise ApiError(422, "InvalidBody", "Body must be an object")
    connection_timeout = _seconds(body, "connectionTimeout", 0, 0, 30)
    response_timeout = _seconds(body, "responseTimeout", 30, 5, 30)
    command_id = str(uuid.uuid4())
    forced = request.query.get("queued", "").lower() == "true" or body.get("queued") is True
    durable = method in templates.durable_commands(_template_of(request, device))
    if forced or (durable and not emulator.hub.online(device.device_id)):
        message = emulator.hub.enqueue_c2d(device, offline_payload(body), {"method-name": method})
        queued: dict[str, Any] = {"id": command_id, "queued": True, "messageId": message.message_id}
        if "request" in body:
            queued["request"] = body["request"]
        emulator.commands.record(device.device_id, method, queued)
        return web.json_response(queued, status=202)
    result: dict[str, Any] = {
        "id": command_id,
        "connectionTimeout": connection_timeout,
        "responseTimeout": response_timeout,
    }
    if "request" in body:
        result["request"] = body["request"]
    try:
        status, payload = await emulator.hub.invoke_method(
            device.device_id,
            method,
            body.get("request"),
            response_timeout=min(float(response_timeout), emulator.config.method_timeout),
            connect_timeout=float(connection_timeout),
        )
    except MethodError as error:
        # IoT Central answers a command the device did not take with 408 RequestTimeout.
        raise ApiError(
            408, "RequestTimeout", f"Request timeout waiting for the device: {error} ({error.code})"
        ) from None
    result.update({"response": payload, "responseCode": status})
    emulator.commands.record(device.device_id, method, result)
    return web.json_response(result, status=201)


async def command_history(request: web.Request) -> web.Response:
    """The device's last run of the command
    (https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/get-command-history)."""
    device = _device(request)
    component = request.match_info.get("component")
    command = request.match_info["name"]
    method = f"{component}*{command}" if component else command
    return web.json_response({"value": _emulator(request).commands.history(device.device_id, method)})


# -- emulator: info and faults ------------------------------------------------------------------------


async def activity(request: web.Request) -> web.Response:
    """Per device: DPS registrations started, hub connections accepted, connections taken over."""
    return web.json_response(_emulator(request).activity.view(request.query.get("deviceId")))


async def info(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    return web.json_response(emulator.info())


async def _fault_body(request: web.Request) -> dict[str, Any]:
    body = await _json_body(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "body must be an object")
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
        return error_response(400, "BadRequest", "scope is dps, hub or all")
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
        return error_response(400, "BadRequest", str(error))
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
    rate = RequestRate(emulator.config.rest_rate_limit, time.monotonic)
    app = web.Application(
        middlewares=[guard(token=emulator.api_token, rate=rate), _limits], client_max_size=1024 * 1024
    )
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
            web.get(device + "/components", list_components),
            web.get(device + "/properties", get_properties),
            web.patch(device + "/properties", patch_properties),
            web.put(device + "/properties", put_properties),
            web.get(component + "/properties", get_properties),
            web.patch(component + "/properties", patch_properties),
            web.put(component + "/properties", put_properties),
            web.get(device + "/telemetry/{name}", get_telemetry_value),
            web.get(component + "/telemetry/{name}", get_telemetry_value),
            web.post(device + "/commands/{name}", run_command),
            web.post(component + "/commands/{name}", run_command),
            web.get(device + "/commands/{name}", command_history),
            web.get(component + "/commands/{name}", command_history),
            web.get("/api/deviceTemplates", list_templates),
            web.get("/api/deviceTemplates/{template_id}", get_template),
            web.put("/api/deviceTemplates/{template_id}", put_template),
            web.delete("/api/deviceTemplates/{template_id}", delete_template),
            web.get("/emulator/info", info),
            web.get("/emulator/telemetry", telemetry_log),
            web.get("/emulator/activity", activity),
            web.post("/emulator/faults/disconnect/{device_id}", fault_disconnect),
            web.post("/emulator/faults/disconnect-all", fault_disconnect_all),
            web.post("/emulator/faults/throttle", fault_throttle),
            web.post("/emulator/faults/expire-tokens", fault_expire_tokens),
            web.post("/emulator/faults/delay-acks", fault_delay_acks),
            web.post("/emulator/faults/move/{device_id}", fault_move),
            web.post("/emulator/faults/outage", fault_outage),
            web.post("/emulator/faults/clear", fault_clear),
            *rest_approval.routes(emulator),
            *rest_relationships.routes(emulator),
        ]
    )
    return app
