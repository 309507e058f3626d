"""The validating half of the codec loader (codec/loader.py parses the file's structure into entries):
each value of a codec table read and checked — types, DTDL limits, LwM2M paths against the object
registry, units, scaling and observe attributes against the resource's model, components among
themselves. Every problem is a `CodecFileError` naming the field; `parse_codec` adds the line."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from translator.codec import dtdl
from translator.codec.spec import Component, ObserveAttributes, PathPattern, SemanticUnit
from translator.codec.table_reader import TableReader
from translator.codec.values import NUMERIC_TYPES, Scaling
from translator.lwm2m import ObjectModel, ObjectRegistry, ResourceModel


class FieldReader(TableReader):
    def __init__(self, source: str, registry: ObjectRegistry) -> None:
        super().__init__(source)
        self.registry = registry

    # --- values ------------------------------------------------------------------------------------

    def string(self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}.{key}", "missing")
            return None
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", f"must be a string, not {type(value).__name__}")
        return value

    def display(self, table: Mapping[str, Any], where: str) -> str | None:
        value = self.string(table, "displayName", where)
        if value is not None and not 1 <= len(value) <= dtdl.MAX_DISPLAY_NAME:
            raise self.fail(f"{where}.displayName", f"must be 1-{dtdl.MAX_DISPLAY_NAME} characters")
        return value

    def number(self, table: Mapping[str, Any], key: str, where: str) -> float | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(f"{where}.{key}", f"must be a finite number, not {value!r}")
        return float(value)

    # --- paths and models --------------------------------------------------------------------------

    def pattern(self, table: Mapping[str, Any], where: str, *, resource: bool = True) -> PathPattern:
        text = self.string(table, "path", where, required=True)
        assert text is not None
        parts = text.split("/")
        expected = "/object/instance/resource" if resource else "/object/instance[/resource]"
        if parts[0] != "" or len(parts) not in ((4,) if resource else (3, 4)):
            raise self.fail(f"{where}.path", f"{text!r} is not {expected}")
        try:
            oid = self.segment(parts[1])
            iid = None if parts[2] == "*" else self.segment(parts[2])
            rid = self.segment(parts[3]) if len(parts) == 4 else None
        except ValueError:
            raise self.fail(
                f"{where}.path", f"{text!r} is not {expected} (ids 0-65535, instance may be *)"
            ) from None
        if self.registry.get(oid) is None:
            raise self.fail(f"{where}.path", f"unknown object {oid} (not in the object registry)")
        return PathPattern(oid, iid, rid)

    @staticmethod
    def segment(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535:
            raise ValueError(text)
        return int(text)

    def model(self, pattern: PathPattern) -> ObjectModel:
        model = self.registry.get(pattern.object_id)
        assert model is not None  # checked by `pattern`
        return model

    def resource(self, pattern: PathPattern, where: str) -> ResourceModel:
        model = self.model(pattern)
        assert pattern.resource_id is not None
        found = model.resource(pattern.resource_id)
        if found is None:
            raise self.fail(
                f"{where}.path", f"object {model.id} ({model.name}) has no resource {pattern.resource_id}"
            )
        return found

    # --- units, scaling, observation ---------------------------------------------------------------

    def unit(
        self, table: Mapping[str, Any], where: str, resource: ResourceModel, scaled: bool
    ) -> SemanticUnit | None:
        unit = self.string(table, "unit", where)
        semantic = self.string(table, "semanticType", where)
        if unit == "":
            return None
        if unit is None:
            if semantic is not None:
                raise self.fail(f"{where}.semanticType", "needs a unit")
            # A scaled value is no longer in the OMA unit, so only an explicit unit applies then.
            found = None if scaled else dtdl.oma_unit(resource)
            return None if found is None else SemanticUnit(*found)
        if resource.multiple or dtdl.primitive_schema(resource.type) not in dtdl.NUMERIC_SCHEMAS:
            raise self.fail(
                f"{where}.unit",
                f"type mismatch: a unit needs a single numeric resource, {resource.name} is not",
            )
        try:
            return SemanticUnit(*dtdl.semantic_unit(unit, semantic))
        except ValueError as exc:
            raise self.fail(f"{where}.unit", str(exc)) from None

    def scaling(self, table: Mapping[str, Any], where: str, resource: ResourceModel) -> Scaling:
        scale = self.number(table, "scale", where)
        offset = self.number(table, "offset", where)
        if scale is None and offset is None:
            return Scaling()
        if resource.type not in NUMERIC_TYPES:
            raise self.fail(
                f"{where}.scale", f"type mismatch: {resource.name} is {resource.type.value}, not a number"
            )
        if scale == 0:
            raise self.fail(f"{where}.scale", "must not be 0")
        return Scaling(1.0 if scale is None else scale, 0.0 if offset is None else offset)

    def observe(self, table: Mapping[str, Any], where: str, resource: ResourceModel) -> ObserveAttributes:
        periods: dict[str, int | None] = {}
        for key in ("pmin", "pmax"):
            value = table.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise self.fail(f"{where}.{key}", f"must be a whole number of seconds ≥ 0, not {value!r}")
            periods[key] = value
        pmin, pmax = periods["pmin"], periods["pmax"]
        if pmin is not None and pmax is not None and pmax < pmin:
            raise self.fail(f"{where}.pmax", f"must be ≥ pmin ({pmin})")
        levels = {key: self.number(table, key, where) for key in ("gt", "lt", "st")}
        if any(v is not None for v in levels.values()) and resource.type not in NUMERIC_TYPES:
            key = next(k for k, v in levels.items() if v is not None)
            raise self.fail(
                f"{where}.{key}", f"type mismatch: {resource.name} is {resource.type.value}, not a number"
            )
        st = levels["st"]
        if st is not None and st < 0:
            raise self.fail(f"{where}.st", "must be ≥ 0")
        return ObserveAttributes(pmin, pmax, levels["gt"], levels["lt"], st)

    # --- components among themselves ---------------------------------------------------------------

    def check_components(self, components: list[Component]) -> None:
        seen: dict[tuple[int, int], str] = {}
        ids: dict[str, str] = {}
        names: set[str] = set()
        for i, comp in enumerate(components):
            where = f"component[{i}]"
            if comp.name in names:
                raise self.fail(f"{where}.name", f"name clash: component {comp.name!r} is declared twice")
            names.add(comp.name)
            key = (comp.object_id, comp.instance_id)
            if key in seen:
                raise self.fail(f"{where}.path", f"/{key[0]}/{key[1]} already has component {seen[key]!r}")
            seen[key] = comp.name
            if comp.interface_id in ids:
                raise self.fail(
                    f"{where}.interface",
                    f"{comp.interface_id!r} is already used by {ids[comp.interface_id]!r}",
                )
            ids[comp.interface_id] = comp.name
