"""The default codec: any object instance with a known model becomes a component, no file needed.

Classification of each resource (`default_kind`):
- Execute → command (no arguments: the model says nothing about them; a codec file can add them).
- Read+Write → writable property. Write-only → a write command (it cannot be read back, so a property
  would show a value nobody knows).
- Read-only and *changing* → telemetry: numbers and booleans (IPSO sensor values, battery level, signal
  strength…), except the few known to be fixed (`STATIC_RESOURCES`).
- Read-only otherwise (strings, times, links, opaque, and the fixed numbers) → read-only property.
- Secrets (names with secret, password, pre-shared, group key…) are never read: writable ones become
  write commands, others are left out. Objects 0 (Security) and 21 (OSCORE) are left out entirely.

A codec file in `overrides` that maps an object replaces the generated entries for that object: its
entries for the object (from its first component bound to it, or its root) are re-bound to each instance.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence

from translator.codec import dtdl
from translator.codec.check import check_codec
from translator.codec.export import contents
from translator.codec.names import component_names, display_name, resource_names
from translator.codec.spec import (
    Codec,
    Command,
    Component,
    Compound,
    Entry,
    Member,
    Operation,
    PathPattern,
    Property,
    SemanticUnit,
    Telemetry,
)
from translator.lwm2m import ObjectModel, ObjectRegistry, Path, ResourceModel, ResourceType

DEFAULT_SOURCE = "<default codec>"
MODEL_PREFIX = "dtmi:iotcTranslator:lwm2m"
EXCLUDED_OBJECTS = frozenset({0, 21})
# Read-only numbers that describe the sensor rather than measure: IPSO range limits, and core
# resources that change only with hardware or configuration.
STATIC_RESOURCES: Mapping[int | None, frozenset[int]] = {
    None: frozenset({5603, 5604}),  # reusable IPSO resources, any object
    1: frozenset({0, 13}),
    3: frozenset({6, 21}),
    4: frozenset({1, 9, 10}),
    5: frozenset({8, 9}),
}
_SECRET = re.compile(
    r"secret|password|passphrase|private key|pre.?shared|psk|key phrase|group key", re.IGNORECASE
)
_CHANGING_TYPES = frozenset(
    {ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.FLOAT, ResourceType.BOOLEAN}
)


# Resources that IoT Central shows best as one value: a geopoint (maps, geofencing) and x/y/z vectors.
# (object, resource) → (compound name, schema, field).
# https://learn.microsoft.com/azure/iot-central/core/howto-use-location-data
COMPOUNDS: Mapping[tuple[int, int], tuple[str, Compound, str]] = {
    (6, 0): ("location", Compound.GEOPOINT, "lat"),
    (6, 1): ("location", Compound.GEOPOINT, "lon"),
    (6, 2): ("location", Compound.GEOPOINT, "alt"),
    **{
        (oid, rid): (name, Compound.VECTOR, axis)
        for oid, name in ((3313, "acceleration"), (3314, "magneticField"), (3334, "angularVelocity"))
        for rid, axis in ((5702, "x"), (5703, "y"), (5704, "z"))
    },
}


class Kind(enum.Enum):
    TELEMETRY = "telemetry"
    PROPERTY = "property"
    WRITABLE_PROPERTY = "writable property"
    EXECUTE = "execute command"
    WRITE = "write command"


def default_kind(object_id: int, resource: ResourceModel) -> Kind | None:
    """How the default codec maps a resource; None when it leaves it out."""
    if resource.executable:
        return Kind.EXECUTE
    if dtdl.primitive_schema(resource.type) is None:
        return None
    secret = _SECRET.search(resource.name) is not None
    if resource.writable:
        return Kind.WRITE if secret or not resource.readable else Kind.WRITABLE_PROPERTY
    if not resource.readable or secret:
        return None
    static = resource.id in STATIC_RESOURCES[None] or resource.id in STATIC_RESOURCES.get(
        object_id, frozenset()
    )
    if resource.type in _CHANGING_TYPES and not static:
        return Kind.TELEMETRY
    return Kind.PROPERTY


def object_entries(model: ObjectModel) -> list[Entry]:
    """The default entries of one object, root-level with a wildcard instance (bound later)."""
    names = resource_names({r.id: r.name for r in model.resources})
    entries: list[Entry] = []
    for resource in model.resources:
        kind = default_kind(model.id, resource)
        if kind is None:
            continue
        name = names[resource.id]
        pattern = PathPattern(model.id, None, resource.id)
        label = display_name(resource.name, name)
        unit = dtdl.oma_unit(resource)
        semantic = None if unit is None else SemanticUnit(*unit)
        if kind is Kind.TELEMETRY:
            member = _member(model, resource.id)
            entries.append(
                Telemetry(name, pattern, resource, display_name=label, unit=semantic, member=member)
            )
        elif kind in (Kind.PROPERTY, Kind.WRITABLE_PROPERTY):
            writable = kind is Kind.WRITABLE_PROPERTY
            entries.append(Property(name, pattern, resource, writable, display_name=label, unit=semantic))
        else:
            operation = Operation.EXECUTE if kind is Kind.EXECUTE else Operation.WRITE
            entries.append(Command(name, operation, pattern, display_name=label, resource=resource))
    return entries


def _member(model: ObjectModel, resource_id: int) -> Member | None:
    """The compound a resource is a field of, when every field it needs is telemetry of this model."""
    found = COMPOUNDS.get((model.id, resource_id))
    if found is None:
        return None
    name, schema, field = found
    fields = {
        f for (oid, rid), (_, _, f) in COMPOUNDS.items() if oid == model.id and _is_telemetry(model, rid)
    }
    if not set(schema.required) <= fields:
        return None
    return Member(name, schema, field, display_name(name[:1].upper() + name[1:], name))


def _is_telemetry(model: ObjectModel, resource_id: int) -> bool:
    resource = model.resource(resource_id)
    return resource is not None and default_kind(model.id, resource) is Kind.TELEMETRY


def _override_entries(object_id: int, overrides: Sequence[Codec]) -> list[Entry] | None:
    for codec in overrides:
        bound = [c.name for c in codec.components if c.object_id == object_id]
        scope = bound[0] if bound else None
        found = [e for e in codec.in_component(scope) if e.pattern.object_id == object_id]
        if found:
            return found
    return None


def default_codec(
    instances: Iterable[Path],
    registry: ObjectRegistry,
    *,
    versions: Mapping[int, str | None] | None = None,
    overrides: Sequence[Codec] = (),
) -> Codec:
    """The default codec for a device's object instances (`/o/i` paths, e.g. from its registration).

    `versions`: object versions the device announced (`</3303>;ver=1.1`); the newest known otherwise.
    Objects without a model are left out (their records are counted as unmapped).
    """
    versions = versions or {}
    models: dict[int, ObjectModel] = {}
    keys: set[tuple[int, int]] = set()
    for path in instances:
        if len(path) != 2 or path[0] in EXCLUDED_OBJECTS:
            continue
        model = registry.get(path[0], versions.get(path[0]))
        if model is not None:
            models[model.id] = model
            keys.add((path[0], path[1]))
    rows = sorted(keys)
    names = component_names((oid, iid, models[oid].name, models[oid].multiple) for oid, iid in rows)
    per_object = {oid: _override_entries(oid, overrides) or object_entries(models[oid]) for oid in models}
    interface_ids = {oid: _interface_id(models[oid], entries) for oid, entries in per_object.items()}

    components: list[Component] = []
    bound: list[Entry] = []
    left_out: list[Path] = []
    capabilities = 0
    for oid, iid in rows:
        model = models[oid]
        # IoT Central holds at most 300 capabilities per template, all components together: instances
        # that would pass it are left out (said by the coverage report), so the template still imports.
        # https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits#device-modeling
        # More instances than an interface holds components stays an error (check_codec): the face
        # refuses such a Register (docs/coap.md), rather than serving a fraction of a huge object list.
        size = len(contents(per_object[oid]))
        if capabilities + size > dtdl.MAX_TEMPLATE_CAPABILITIES and len(rows) <= dtdl.MAX_CONTENTS:
            left_out.append(Path(oid, iid))
            continue
        capabilities += size
        name = names[(oid, iid)]
        label = display_name(f"{model.name} {iid}" if model.multiple else model.name, name)
        components.append(
            Component(
                name,
                oid,
                iid,
                _instance_interface(interface_ids[oid], iid),
                label,
                display_name(model.name, f"object{oid}"),
            )
        )
        bound += [
            dataclasses.replace(e, component=name, pattern=e.pattern.bind(iid)) for e in per_object[oid]
        ]
    signature = json.dumps([[c.name, c.interface_id] for c in components])
    model_id = f"{MODEL_PREFIX}:auto:t{_digest(signature)};1"
    summary = ", ".join(dict.fromkeys(models[oid].name for oid, _ in rows)) or "no objects"
    codec = Codec(
        source=DEFAULT_SOURCE,
        model_id=model_id,
        display_name=display_name(f"LwM2M device: {summary}", "LwM2M device"),
        description=None,
        components=tuple(components),
        telemetry=tuple(e for e in bound if isinstance(e, Telemetry)),
        properties=tuple(e for e in bound if isinstance(e, Property)),
        commands=tuple(e for e in bound if isinstance(e, Command)),
        left_out=tuple(left_out),
    )
    check_codec(codec)
    return codec


def _interface_id(model: ObjectModel, entries: list[Entry]) -> str:
    """`dtmi:iotcTranslator:lwm2m:o3303:v1_1:c<hash>;1`: the object, its version, and its contents.

    The hash makes the id change whenever the contents do (a new DDF, an override), as DTDL requires of
    a published interface, without us keeping version numbers anywhere.
    """
    version = re.sub(r"[^A-Za-z0-9]+", "_", model.version).strip("_") or "0"
    body = json.dumps(contents(entries), sort_keys=True)
    return f"{MODEL_PREFIX}:o{model.id}:v{version}:c{_digest(body)};1"


def _instance_interface(interface_id: str, instance: int) -> str:
    """One interface per component: `…:c<hash>:i0;1`, `…:c<hash>:i1;1` for the instances of one object.

    DTDL v2 lets components share an interface, but IoT Central did not import such models: Microsoft
    changed its TemperatureController sample to one model per component in 2020 "to make it compatible
    with Central" (Azure/azure-iot-sdk-python#714), and the shared-interface version still failed to import
    in 2021 (MicrosoftDocs/azure-docs#82593). docs/codec.md says more.
    """
    path, _, version = interface_id.rpartition(";")
    return f"{path}:i{instance};{version}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
