"""Codec → IoT Central device template: a JSON array of DTDL v2 interfaces, the root first.

Each component's interface follows the root. No codec builder shares an interface between components
(IoT Central did not import such models, docs/codec.md); should two share one, it must have the same
contents and is emitted once.
"""

from __future__ import annotations

from typing import Any

from translator.codec import dtdl
from translator.codec.errors import CodecFileError
from translator.codec.spec import Codec, Command, Compound, Entry, Operation, Property, Telemetry
from translator.codec.transforms import NO_TRANSFORMS, EnrichmentKind, Transforms

JsonObject = dict[str, Any]


def export_template(codec: Codec) -> list[JsonObject]:
    """The device template as DTDL v2 interfaces, ready for `json.dumps`."""
    root = _interface(
        codec.model_id,
        codec.display_name,
        codec.description,
        codec.in_component(None),
        transforms=codec.transforms,
        component=None,
    )
    for comp in codec.components:
        item: JsonObject = {"@type": "Component", "name": comp.name, "schema": comp.interface_id}
        if comp.display_name:
            item["displayName"] = comp.display_name
        root["contents"].append(item)
    interfaces = [root]
    emitted: dict[str, JsonObject] = {}
    for comp in codec.components:
        label = comp.interface_display_name or comp.display_name
        entries = codec.in_component(comp.name)
        interface = _interface(
            comp.interface_id, label, None, entries, transforms=codec.transforms, component=comp.name
        )
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


def _interface(
    dtmi: str,
    display: str | None,
    description: str | None,
    entries: list[Entry],
    *,
    transforms: Transforms,
    component: str | None,
) -> JsonObject:
    items = contents(entries, transforms, component)
    # IoT Central's schemas (geopoint, vector) and adjunct types need its context beside DTDL's.
    compound = any(isinstance(e, Telemetry) and e.member is not None for e in entries)
    context: Any = [dtdl.CONTEXT, dtdl.IOTC_CONTEXT] if compound else dtdl.CONTEXT
    interface: JsonObject = {"@context": context, "@id": dtmi, "@type": "Interface"}
    if display:
        interface["displayName"] = display
    if description:
        interface["description"] = description
    interface["contents"] = items
    return interface


def contents(
    entries: list[Entry], transforms: Transforms = NO_TRANSFORMS, component: str | None = None
) -> list[JsonObject]:
    """The DTDL contents of one interface: one element per entry, except that the members of a compound
    telemetry (geopoint, vector) become one element, where the first of them stands; then what the
    ingress transforms add (computed telemetry, enrichment), dropped telemetry left out, renamed telemetry
    under its new name."""
    items: list[JsonObject] = []
    done: set[str] = set()
    for entry in entries:
        if isinstance(entry, Telemetry) and entry.member is not None:
            if entry.member.name not in done:
                done.add(entry.member.name)
                name = entry.member.name
                members = [
                    e
                    for e in entries
                    if isinstance(e, Telemetry) and e.member is not None and e.member.name == name
                ]
                items.append(_compound(members))
            continue
        if isinstance(entry, Telemetry):
            sent_as = transforms.exported_name(entry.name)
            if sent_as is not None:
                items.append({**content(entry), "name": sent_as})
            continue
        items.append(content(entry))
    return items + _ingress(transforms, component)


def _ingress(transforms: Transforms, component: str | None) -> list[JsonObject]:
    """Computed telemetry with its schema and unit; enrichment as read-only properties or telemetry
    (a devices CSV's text)."""
    items: list[JsonObject] = []
    for computed in transforms.computed:
        name = transforms.exported_name(computed.name)
        if computed.component != component or name is None:
            continue
        unit = computed.unit
        item: JsonObject = {
            "@type": "Telemetry" if unit is None else ["Telemetry", unit.semantic_type],
            "name": name,
            "schema": computed.schema,
        }
        if unit is not None:
            item["unit"] = unit.unit
        if computed.display_name:
            item["displayName"] = computed.display_name
        items.append(item)
    for enrichment in transforms.enrichments:
        if enrichment.component != component:
            continue
        kind = "Property" if enrichment.kind is EnrichmentKind.PROPERTY else "Telemetry"
        item = {"@type": kind, "name": enrichment.name, "schema": "string"}
        if enrichment.display_name:
            item["displayName"] = enrichment.display_name
        items.append(item)
    return items


def capability_count(codec: Codec) -> int:
    """Capabilities (telemetry, properties, commands) of the whole template: the root's and every
    component's, as IoT Central counts them against its limit of 300 per device template."""
    scopes = [None, *(c.name for c in codec.components)]
    return sum(len(contents(codec.in_component(scope), codec.transforms, scope)) for scope in scopes)


def _compound(members: list[Telemetry]) -> JsonObject:
    first = members[0]
    assert first.member is not None
    units = {m.unit for m in members}
    unit = next(iter(units)) if len(units) == 1 else None
    # A vector of accelerations or velocities gets IoT Central's adjunct type and its unit; any other
    # vector (magnetic field, angular velocity) stays a plain vector: those adjuncts allow no other unit.
    adjunct = None
    if first.member.schema is Compound.GEOPOINT:
        adjunct = "Location"
    elif unit is not None and unit.semantic_type in dtdl.VECTOR_ADJUNCTS:
        adjunct = dtdl.VECTOR_ADJUNCTS[unit.semantic_type]
    item: JsonObject = {
        "@type": "Telemetry" if adjunct is None else ["Telemetry", adjunct],
        "name": first.member.name,
        "schema": first.member.schema.value,
    }
    if adjunct is not None and adjunct != "Location" and unit is not None:
        item["unit"] = unit.unit
    if first.member.display_name:
        item["displayName"] = first.member.display_name
    return item


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


def device_template(codec: Codec, *, queue_mode: bool = False) -> JsonObject:
    """The IoT Central device template JSON: the body `PUT /api/deviceTemplates/{id}` takes.

    https://learn.microsoft.com/azure/iot-central/core/howto-manage-device-templates-with-rest-api: a
    `capabilityModel` (the root interface, each component's interface inline) under a `ModelDefinition`
    / `DeviceModel` with both contexts. The template's `@id` is the model id itself, so whichever of the two
    an application matches a device's announced model id against, it is the same. It is not a pure DTDL
    document: it may carry IoT Central's own data, here `durable` on commands ("Queue if offline",
    https://learn.microsoft.com/azure/iot-central/core/howto-use-commands#offline-commands) when the device
    sleeps (LwM2M queue mode): IoT Central then queues a command while the device is offline and delivers it
    as a cloud-to-device message, which the translator keeps and runs at the device's next wake-up.
    """
    interfaces = export_template(codec)
    by_id = {i["@id"]: i for i in interfaces[1:]}

    def inline(interface: JsonObject) -> JsonObject:
        body = {k: v for k, v in interface.items() if k != "@context"}
        items = []
        for item in body["contents"]:
            kind = item.get("@type")
            if kind == "Component":
                items.append({**item, "schema": inline(by_id[item["schema"]])})
            elif kind == "Command" and queue_mode:
                items.append({**item, "durable": True})
            else:
                items.append(item)
        body["contents"] = items
        return body

    template: JsonObject = {
        "@id": codec.model_id,
        "@type": ["ModelDefinition", "DeviceModel"],
        "@context": [dtdl.IOTC_CONTEXT, dtdl.CONTEXT],
        "displayName": codec.display_name or codec.model_id,
        "capabilityModel": inline(interfaces[0]),
    }
    return template
