"""What a codec does not translate for a device's objects: said once (an INFO line per registration, and on
stderr by `template export`), instead of a warning per resource every time one shows up.

Pure: a codec, the registered object instances and the object registry in, a description out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from translator.codec.spec import Codec
from translator.lwm2m import ObjectRegistry, Path


@dataclass(frozen=True, slots=True)
class Untranslated:
    unknown_objects: tuple[int, ...]  # no object model (DDF) known: nothing of them can be mapped
    unmapped_objects: tuple[int, ...]  # a model exists, but the codec maps nothing of the object
    dropped: tuple[
        tuple[int, tuple[int, ...]], ...
    ]  # per mapped object: model resources the codec leaves out
    over_limit: tuple[Path, ...] = ()  # instances left out to keep the template within IoT Central's limit

    def __bool__(self) -> bool:
        return bool(self.unknown_objects or self.unmapped_objects or self.dropped or self.over_limit)

    def describe(self) -> str:
        parts: list[str] = []
        if self.unknown_objects:
            parts.append("objects without a model " + ", ".join(f"/{o}" for o in self.unknown_objects))
        if self.unmapped_objects:
            parts.append("objects the codec leaves out " + ", ".join(f"/{o}" for o in self.unmapped_objects))
        if self.dropped:
            parts.append(
                "resources the codec leaves out "
                + "; ".join(f"/{o}: {','.join(map(str, ids))}" for o, ids in self.dropped)
            )
        if self.over_limit:
            parts.append(
                "instances over IoT Central's 300 capabilities per template "
                + ", ".join(str(p) for p in self.over_limit)
            )
        return "; ".join(parts)


def untranslated(codec: Codec, instances: Iterable[Path], registry: ObjectRegistry) -> Untranslated:
    """What of these object instances `codec` does not translate (object 0, Security, is never read and is
    not counted)."""
    objects = sorted({p[0] for p in instances if p and p[0] != 0})
    mapped: dict[int, set[int]] = {}
    for entry in codec.entries():
        pattern = entry.pattern
        resources = mapped.setdefault(pattern.object_id, set())
        if pattern.resource_id is not None:
            resources.add(pattern.resource_id)
    unknown: list[int] = []
    unmapped: list[int] = []
    dropped: list[tuple[int, tuple[int, ...]]] = []
    for object_id in objects:
        model = registry.get(object_id)
        if object_id not in mapped:
            (unknown if model is None else unmapped).append(object_id)
            continue
        if model is None:
            continue
        left = tuple(sorted(r.id for r in model.resources if r.id not in mapped[object_id]))
        if left:
            dropped.append((object_id, left))
    return Untranslated(tuple(unknown), tuple(unmapped), tuple(dropped), codec.left_out)
