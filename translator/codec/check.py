"""Template-level DTDL rules every codec must meet, however it was built (file or default).

The loader reports most mistakes earlier with the exact field; this is the net under both builders,
so an exported template can only fail Microsoft's parser for a reason these checks do not know.
"""

from __future__ import annotations

from collections import Counter

from translator.codec import dtdl
from translator.codec.errors import CodecFileError
from translator.codec.names import is_dtdl_name
from translator.codec.spec import Codec, Compound, Property, Telemetry


def check_codec(codec: Codec) -> None:
    src = codec.source
    if not dtdl.is_dtmi(codec.model_id):
        raise CodecFileError(
            src, "template.id", f"{codec.model_id!r} is not a DTMI of at most 128 characters"
        )
    interfaces: dict[str, str] = {codec.model_id: "template.id"}
    seen_components: set[str] = set()
    for comp in codec.components:
        where = f"component {comp.name!r}"
        if not is_dtdl_name(comp.name):
            raise CodecFileError(src, where, f"{comp.name!r} is not a DTDL name")
        if comp.name in seen_components:
            raise CodecFileError(src, where, "name clash: two components share this name")
        seen_components.add(comp.name)
        if not dtdl.is_dtmi(comp.interface_id):
            raise CodecFileError(
                src, where, f"interface {comp.interface_id!r} is not a DTMI of at most 128 characters"
            )
        if interfaces.get(comp.interface_id) == "template.id":
            raise CodecFileError(src, where, "a component cannot use the template's own interface id")
        interfaces.setdefault(comp.interface_id, where)
    uplink: dict[str, str] = {}
    items: list[Telemetry | Property] = [*codec.telemetry, *codec.properties]
    for item in items:
        # A record has one destination; a second entry for the same resource would never be used.
        key = str(item.pattern)
        if key in uplink:
            raise CodecFileError(src, item.name, f"{key} is already mapped to {uplink[key]!r}")
        uplink[key] = item.name
    groups: dict[str | None, list[str]] = {None: [c.name for c in codec.components]}
    exported: dict[str | None, int] = {}
    compounds: dict[tuple[str | None, str], list[Telemetry]] = {}
    for entry in codec.entries():
        if entry.component is not None and entry.component not in seen_components:
            raise CodecFileError(src, f"{entry.name}", f"unknown component {entry.component!r}")
        if not is_dtdl_name(entry.name):
            raise CodecFileError(src, f"{entry.name}", f"{entry.name!r} is not a DTDL name")
        groups.setdefault(entry.component, []).append(entry.name)
        if isinstance(entry, Telemetry) and entry.member is not None:
            members = compounds.setdefault((entry.component, entry.member.name), [])
            if not members:
                groups[entry.component].append(entry.member.name)
                exported[entry.component] = exported.get(entry.component, 0) + 1
            members.append(entry)
        else:
            exported[entry.component] = exported.get(entry.component, 0) + 1
    for (component, name), members in compounds.items():
        _check_compound(src, component, name, members)
    _count_transforms(codec, exported)
    for component, names in groups.items():
        where = "root interface" if component is None else f"component {component!r}"
        clashes = [n for n, k in Counter(names).items() if k > 1]
        if clashes:
            raise CodecFileError(src, where, f"name clash: {', '.join(sorted(clashes))} used more than once")
        count = exported.get(component, 0) + (len(codec.components) if component is None else 0)
        if count > dtdl.MAX_CONTENTS:
            raise CodecFileError(src, where, f"{count} contents; DTDL allows at most {dtdl.MAX_CONTENTS}")
    # IoT Central counts the capabilities of all components together:
    # https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits#device-modeling
    total = exported.get(None, 0) + sum(exported.get(c.name, 0) for c in codec.components)
    if total > dtdl.MAX_TEMPLATE_CAPABILITIES:
        raise CodecFileError(
            src,
            "template",
            f"{total} capabilities (telemetry, properties, commands of all components together); an IoT "
            f"Central device template holds at most {dtdl.MAX_TEMPLATE_CAPABILITIES}: map fewer resources",
        )


def _check_compound(src: str, component: str | None, name: str, members: list[Telemetry]) -> None:
    where = f"telemetry {name!r}" + ("" if component is None else f" of component {component!r}")
    schema = members[0].member.schema if members[0].member is not None else Compound.VECTOR
    fields = [m.member.field for m in members if m.member is not None]
    if any(m.member is None or m.member.schema is not schema for m in members):
        raise CodecFileError(src, where, "its members mix geopoint and vector")
    unknown = sorted(set(fields) - set(schema.fields))
    if unknown:
        raise CodecFileError(src, where, f"{schema.value} has no field {', '.join(unknown)}")
    twice = sorted(f for f, k in Counter(fields).items() if k > 1)
    if twice:
        raise CodecFileError(src, where, f"field {', '.join(twice)} is mapped twice")
    missing = [f for f in schema.required if f not in fields]
    if missing:
        raise CodecFileError(src, where, f"a {schema.value} needs {', '.join(missing)} too")
    for member in members:
        schema_of = dtdl.primitive_schema(member.resource.type)
        if member.resource.multiple or schema_of not in dtdl.NUMERIC_SCHEMAS:
            raise CodecFileError(
                src, where, f"{member.resource.name} ({member.pattern}) is not a single number"
            )


def _count_transforms(codec: Codec, exported: dict[str | None, int]) -> None:
    """What the ingress transforms add to each interface (computed, enrichment) and take (dropped)."""
    t = codec.transforms
    for computed in t.computed:
        if t.exported_name(computed.name) is not None:
            exported[computed.component] = exported.get(computed.component, 0) + 1
    for enrichment in t.enrichments:
        exported[enrichment.component] = exported.get(enrichment.component, 0) + 1
    for telemetry in codec.telemetry:
        if telemetry.member is None and telemetry.name in t.dropped:
            exported[telemetry.component] = exported.get(telemetry.component, 0) - 1
