"""Template-level DTDL rules every codec must meet, however it was built (file or default).

The loader reports most mistakes earlier with the exact field; this is the net under both builders,
so an exported template can only fail Microsoft's parser for a reason these checks do not know.
"""

from __future__ import annotations

from collections import Counter

from translator.codec import dtdl
from translator.codec.errors import CodecFileError
from translator.codec.names import is_dtdl_name
from translator.codec.spec import Codec, Property, Telemetry


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
    for entry in codec.entries():
        if entry.component is not None and entry.component not in seen_components:
            raise CodecFileError(src, f"{entry.name}", f"unknown component {entry.component!r}")
        if not is_dtdl_name(entry.name):
            raise CodecFileError(src, f"{entry.name}", f"{entry.name!r} is not a DTDL name")
        groups.setdefault(entry.component, []).append(entry.name)
    for component, names in groups.items():
        where = "root interface" if component is None else f"component {component!r}"
        clashes = [n for n, k in Counter(names).items() if k > 1]
        if clashes:
            raise CodecFileError(src, where, f"name clash: {', '.join(sorted(clashes))} used more than once")
        if len(names) > dtdl.MAX_CONTENTS:
            raise CodecFileError(
                src, where, f"{len(names)} contents; DTDL allows at most {dtdl.MAX_CONTENTS}"
            )
