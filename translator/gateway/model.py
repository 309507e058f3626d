"""The gateway device's DTDL v2 model and IoT Central device template: health telemetry, properties, commands,
and the relationship to its downstream devices.

A gateway template is a device template whose model also declares relationships to downstream devices
(https://learn.microsoft.com/azure/iot-central/core/tutorial-define-gateway-device-type: "select This is a
gateway device", then "Relationships"); IoT Central writes it as `@type` "GatewayModel" beside
"ModelDefinition"/"DeviceModel", and each relationship as `["Relationship", "GatewayDevice"]` from its own
context `dtmi:iotcentral:context;2`. An empty `target` admits downstream devices of any template: the
translator's devices have one template per object list.
"""

from __future__ import annotations

from typing import Any, Final

from translator.codec.dtdl import CONTEXT, IOTC_CONTEXT

JsonObject = dict[str, Any]

# The session states reported as telemetry, in the pool's words (translator.iotc.client.SessionState).
SESSION_STATES: Final = ("provisioning", "connecting", "connected", "backing off", "waiting for approval")
PORTS: Final = ("coap", "coaps", "operations", "http")
DISCONNECT: Final = "disconnectDevice"
REPLAY: Final = "replayOutbox"


def session_telemetry(state: str) -> str:
    """`sessionsWaitingForApproval` for "waiting for approval"."""
    return "sessions" + "".join(word.capitalize() for word in state.split())


def _telemetry(name: str, display: str, schema: str, unit: str | None = None) -> JsonObject:
    item: JsonObject = {"@type": "Telemetry", "name": name, "displayName": display, "schema": schema}
    if unit is not None:
        item["@type"] = ["Telemetry", "Frequency"]
        item["unit"] = unit
    return item


def _object(*fields: tuple[str, str]) -> JsonObject:
    return {"@type": "Object", "fields": [{"name": name, "schema": schema} for name, schema in fields]}


def gateway_interface(model_id: str) -> JsonObject:
    """The gateway's root interface (import it in the UI, or publish `gateway_template`)."""
    contents: list[JsonObject] = [
        _telemetry("devices", "Devices", "integer"),
        _telemetry("registrations", "LwM2M registrations", "integer"),
        *(_telemetry(session_telemetry(state), f"Sessions {state}", "integer") for state in SESSION_STATES),
        _telemetry("outboxDepth", "Outbox depth", "integer"),
        _telemetry("messagesPerSecond", "Messages per second", "double"),
        {"@type": "Property", "name": "version", "displayName": "Version", "schema": "string"},
        {
            "@type": "Property",
            "name": "listeningPorts",
            "displayName": "Listening ports",
            "schema": _object(*((port, "integer") for port in PORTS)),
        },
        {
            "@type": "Command",
            "name": DISCONNECT,
            "displayName": "Disconnect a device",
            "description": "Drop the device's IoT Central session; its next message connects it again.",
            "request": {"name": "deviceId", "schema": "string"},
            "response": {
                "name": "result",
                "schema": _object(("deviceId", "string"), ("disconnected", "boolean")),
            },
        },
        {
            "@type": "Command",
            "name": REPLAY,
            "displayName": "Replay the outbox",
            "description": "Replay every device's outbox now (of those whose session is up).",
            "response": {
                "name": "result",
                "schema": _object(("devices", "integer"), ("messages", "integer")),
            },
        },
        {
            "@type": ["Relationship", "GatewayDevice"],
            "name": "downstream",
            "displayName": "LwM2M devices",
            "target": [],
        },
    ]
    return {
        "@context": [IOTC_CONTEXT, CONTEXT],
        "@id": model_id,
        "@type": "Interface",
        "displayName": "iotc-translator gateway",
        "contents": contents,
    }


def gateway_template(model_id: str) -> JsonObject:
    """The device template `PUT /api/deviceTemplates/{model_id}` publishes (codec.export.device_template's
    envelope, with "GatewayModel")."""
    interface = {k: v for k, v in gateway_interface(model_id).items() if k != "@context"}
    return {
        "@id": model_id,
        "@type": ["ModelDefinition", "DeviceModel", "GatewayModel"],
        "@context": [IOTC_CONTEXT, CONTEXT],
        "displayName": "iotc-translator gateway",
        "capabilityModel": interface,
    }
