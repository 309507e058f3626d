"""Codec → IoT Central device template: a JSON array of DTDL v2 interfaces, the root first.

Each component's interface follows the root. Components that share an interface id (the default codec
gives every instance of an object the same one) must have the same contents; it is emitted once.
"""

from __future__ import annotations

from typing import Any

from translator.codec import dtdl
from translator.codec.errors import CodecFileError
from translator.codec.spec import Codec, Command, Entry, Operation, Property, Telemetry

JsonObject = dict[str, Any]


def export_template(codec: Codec) -> list[JsonObject]:
    """The device template as DTDL v2 interfaces, ready for `json.dumps`."""
    root = _interface(codec.model_id, codec.display_name, codec.description, codec.in_component(None))
    for comp in codec.components:
        item: JsonObject = {"@type": "Component", "name": comp.name, "schema": comp.interface_id}
        if comp.display_name:
            item["displayName"] = comp.display_name
        root["contents"].append(item)
    interfaces = [root]
    emitted: dict[str, JsonObject] = {}
    for comp in codec.components:
        label = comp.interface_display_name or comp.display_name
        interface = _interface(comp.interface_id, label, None, codec.in_component(comp.name))
        previous = emitted.get(comp.interface_id)
        if previous is None:
            emitted[comp.interface_id] = interface
            interfaces.append(interface)
        elif previous["contents"] != interface["contents"]:
            raise CodecFileError(
                codec.source,
                f"component {comp.name!r}",
                f"interface {comp.interface_id} is shared with different contents",
            )
    return interfaces


def _interface(dtmi: str, display: str | None, description: str | None, entries: list[Entry]) -> JsonObject:
    interface: JsonObject = {"@context": dtdl.CONTEXT, "@id": dtmi, "@type": "Interface"}
    if display:
        interface["displayName"] = display
    if description:
        interface["description"] = description
    interface["contents"] = [content(e) for e in entries]
    return interface


def content(entry: Entry) -> JsonObject:
    """One DTDL content element for a codec entry."""
    if isinstance(entry, Command):
        return _command(entry)
    kind = "Telemetry" if isinstance(entry, Telemetry) else "Property"
    item: JsonObject = {
        "@type": kind if entry.unit is None else [kind, entry.unit.semantic_type],
        "name": entry.name,
        "schema": dtdl.value_schema(entry.resource, scaled=not entry.scaling.identity),
    }
    if entry.unit is not None:
        item["unit"] = entry.unit.unit
    if entry.display_name:
        item["displayName"] = entry.display_name
    if isinstance(entry, Property) and entry.writable:
        item["writable"] = True
    return item


def _command(command: Command) -> JsonObject:
    item: JsonObject = {"@type": "Command", "name": command.name}
    if command.display_name:
        item["displayName"] = command.display_name
    if command.operation is Operation.EXECUTE and command.arguments:
        item["request"] = {
            "name": "arguments",
            "schema": {
                "@type": "Object",
                "fields": [{"name": a.name, "schema": a.schema} for a in command.arguments],
            },
        }
    elif command.operation is Operation.WRITE:
        assert command.resource is not None
        item["request"] = {"name": "value", "schema": dtdl.value_schema(command.resource)}
    elif command.operation is Operation.READ:
        if command.resource is not None:
            item["response"] = {"name": "value", "schema": dtdl.value_schema(command.resource)}
        else:
            item["response"] = {
                "name": "values",
                "schema": {
                    "@type": "Object",
                    "fields": [
                        {"name": f.name, "schema": dtdl.value_schema(f.resource)} for f in command.fields
                    ],
                },
            }
    return item
