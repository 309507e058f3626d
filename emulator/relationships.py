"""Device relationships: a gateway (source) and its downstream devices (targets), as IoT Central keeps them.

A downstream device names its gateway in its DPS registration payload — `{"modelId": …, "iotcGateway":
{"iotcGatewayId": "<gateway device id>"}}` — and IoT Central then "establishes the relationship between the
downstream device and its gateway" (https://learn.microsoft.com/azure/iot-central/core/
tutorial-define-gateway-device-type#connect-real-downstream-devices). The REST API shows it as a
DeviceRelationship `{id, source (parent), target (child)}`
(https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/list-relationships). Pure
functions over the application's `relationships` (id → {"source", "target"}).
"""

from __future__ import annotations

import uuid
from typing import Any

Relationships = dict[str, dict[str, str]]


def gateway_of(payload: Any) -> str | None:
    """The gateway a DPS registration payload names, if any."""
    if not isinstance(payload, dict):
        return None
    gateway = payload.get("iotcGateway")
    gateway_id = gateway.get("iotcGatewayId") if isinstance(gateway, dict) else None
    return gateway_id if isinstance(gateway_id, str) and gateway_id else None


def attach(relationships: Relationships, gateway_id: str, device_id: str) -> bool:
    """Make `gateway_id` the device's one gateway; True when that changed anything."""
    current = [rid for rid, r in relationships.items() if r["target"] == device_id]
    if any(relationships[rid]["source"] == gateway_id for rid in current):
        return False
    for rid in current:  # a downstream device has one gateway: registering through another moves it
        del relationships[rid]
    relationships[str(uuid.uuid4())] = {"source": gateway_id, "target": device_id}
    return True


def of_device(relationships: Relationships, device_id: str) -> list[dict[str, str]]:
    """The device's relationships, as a parent or as a child."""
    return [view(rid, r) for rid, r in relationships.items() if device_id in (r["source"], r["target"])]


def view(relationship_id: str, relationship: dict[str, str]) -> dict[str, str]:
    return {"id": relationship_id, "source": relationship["source"], "target": relationship["target"]}


def forget_device(relationships: Relationships, device_id: str) -> None:
    for rid in [rid for rid, r in relationships.items() if device_id in (r["source"], r["target"])]:
        del relationships[rid]
