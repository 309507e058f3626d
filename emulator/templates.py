"""Device templates as IoT Central's REST API holds them, and what the emulator reads from one.

A template is the body of `PUT /api/deviceTemplates/{id}`: `@type` ["ModelDefinition", "DeviceModel"] and a
`capabilityModel` (a DTDL v2 interface whose components carry their interfaces inline) —
https://learn.microsoft.com/azure/iot-central/core/howto-manage-device-templates-with-rest-api. Pure
functions; the REST layer stores and serves the documents.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]

TEMPLATE_TYPES = ("ModelDefinition", "DeviceModel")


def template_problem(template_id: str, body: Any) -> str:
    """Why `body` is not a device template IoT Central would take, or ''."""
    if not template_id.startswith("dtmi:"):
        return "a device template id is a DTMI (dtmi:…;version)"
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    types = body.get("@type")
    if not isinstance(types, list) or not all(kind in types for kind in TEMPLATE_TYPES):
        return '@type must be ["ModelDefinition", "DeviceModel"]'
    model = body.get("capabilityModel")
    if not isinstance(model, dict) or not isinstance(model.get("contents", []), list):
        return "capabilityModel must be a DTDL interface"
    for component in _components(model):
        if not isinstance(component.get("schema"), dict):
            return f"component {component.get('name')!r}: its interface must be inline"
    return ""


def _contents(interface: JsonObject) -> list[JsonObject]:
    contents = interface.get("contents", [])
    return [item for item in contents if isinstance(item, dict)] if isinstance(contents, list) else []


def _is(item: JsonObject, kind: str) -> bool:
    types = item.get("@type")
    return types == kind or (isinstance(types, list) and kind in types)


def _components(model: JsonObject) -> list[JsonObject]:
    return [item for item in _contents(model) if _is(item, "Component")]


def components(template: JsonObject) -> list[JsonObject]:
    """The template's components as `GET /api/devices/{id}/components` lists them."""
    model = template.get("capabilityModel", {})
    listed = []
    for item in _components(model):
        schema = item.get("schema")
        entry: JsonObject = {"@type": "Component", "name": item.get("name")}
        if "displayName" in item:
            entry["displayName"] = item["displayName"]
        entry["schema"] = schema.get("@id") if isinstance(schema, dict) else schema
        listed.append(entry)
    return listed


def component_names(template: JsonObject | None) -> set[str]:
    if template is None:
        return set()
    return {str(item.get("name")) for item in _components(template.get("capabilityModel", {}))}


def durable_commands(template: JsonObject | None) -> set[str]:
    """Method names (`command` or `component*command`) of the commands marked "Queue if offline".

    IoT Central's DTDL extension calls the option `durable` —
    https://learn.microsoft.com/azure/iot-central/core/howto-use-commands#offline-commands.
    """
    if template is None:
        return set()
    model = template.get("capabilityModel", {})
    found = {
        str(item.get("name")) for item in _contents(model) if _is(item, "Command") and item.get("durable")
    }
    for component in _components(model):
        schema = component.get("schema")
        if isinstance(schema, dict):
            found |= {
                f"{component.get('name')}*{item.get('name')}"
                for item in _contents(schema)
                if _is(item, "Command") and item.get("durable")
            }
    return found


def command_has_request(template: JsonObject | None, method: str) -> bool | None:
    """Whether the command defines a request (None: the template does not define the command)."""
    if template is None:
        return None
    model = template.get("capabilityModel", {})
    component, _, command = method.rpartition("*")
    interface: Any = model
    if component:
        interface = next(
            (item.get("schema") for item in _components(model) if item.get("name") == component), None
        )
    if not isinstance(interface, dict):
        return None
    for item in _contents(interface):
        if _is(item, "Command") and item.get("name") == command:
            return "request" in item
    return None


def from_interfaces(interfaces: list[JsonObject], display_name: str | None = None) -> JsonObject:
    """The REST body for an exported template (a DTDL array, root first): component interfaces inlined.

    This is what a user's step 2 amounts to: the root interface becomes the capability model, each
    component's `schema` (a DTMI) is replaced by the interface of that id from the same file.
    """
    if not interfaces:
        raise ValueError("no interfaces")
    by_id = {item.get("@id"): item for item in interfaces[1:]}
    root = dict(interfaces[0])
    contents = []
    for item in _contents(root):
        schema = item.get("schema")
        if _is(item, "Component") and isinstance(schema, str) and schema in by_id:
            interface = {k: v for k, v in by_id[schema].items() if k != "@context"}
            contents.append({**item, "schema": interface})
        else:
            contents.append(item)
    root["contents"] = contents
    name = display_name or root.get("displayName") or root.get("@id")
    return {"@type": list(TEMPLATE_TYPES), "displayName": name, "capabilityModel": root}
