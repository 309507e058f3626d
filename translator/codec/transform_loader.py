"""The ingress-transform tables of a codec file → `Transforms`, checked against the codec's entries.

    [[computed]]     name, expression, component, schema = double|long|boolean, unit, semanticType,
                     displayName
    [[enrichment]]   name, column (default: name), as = property|telemetry, component, displayName
    [transform]      drop = [names], rename = {declared = "sent as"}

An expression reads the plain numeric telemetry of its interface by the names the codec declares (and the
computed fields above it there); each problem is a `CodecFileError` naming the table and key, as the
loader's own (the line is added by `parse_codec`). With `entries=None` (a transform file of the HTTP face,
whose measurement names are only known per request) names are not checked, only syntax and functions.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from translator.codec import dtdl
from translator.codec.errors import CodecFileError
from translator.codec.expressions import ExpressionError, compile_expression
from translator.codec.locate import field_line
from translator.codec.names import is_dtdl_name
from translator.codec.spec import Entry, SemanticUnit, Telemetry
from translator.codec.table_reader import TableReader
from translator.codec.transforms import (
    COMPUTED_SCHEMAS,
    Computed,
    Enrichment,
    EnrichmentKind,
    Transforms,
)

TRANSFORM_TABLES = frozenset({"computed", "enrichment", "transform"})
_COMPUTED_KEYS = frozenset(
    {"name", "expression", "component", "schema", "unit", "semanticType", "displayName"}
)
_ENRICHMENT_KEYS = frozenset({"name", "column", "as", "component", "displayName"})
_TRANSFORM_KEYS = frozenset({"drop", "rename"})


def load_transform_file(path: str | Path) -> Transforms:
    """A file of transform tables alone (the HTTP face's `http.transforms`): names are the measurements'
    and are not known at load, so only syntax, functions, units and keys are checked."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise CodecFileError(source, "(file)", f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CodecFileError(source, "(file)", f"not valid TOML: {exc}") from None
    try:
        for key in doc:
            if key not in TRANSFORM_TABLES:
                allowed = ", ".join(sorted(TRANSFORM_TABLES))
                raise CodecFileError(source, key, f"unknown table (a transform file holds {allowed})")
        return load_transforms(doc, source, None)
    except CodecFileError as error:
        if error.line is not None:
            raise
        raise CodecFileError(source, error.field, error.reason, field_line(text, error.field)) from None


def load_transforms(
    doc: Mapping[str, Any],
    source: str,
    entries: Sequence[Entry] | None,
    components: frozenset[str] = frozenset(),
) -> Transforms:
    return _TransformLoader(source, entries, components).transforms(doc)


class _TransformLoader(TableReader):
    def __init__(self, source: str, entries: Sequence[Entry] | None, components: frozenset[str]) -> None:
        super().__init__(source)
        self.entries = entries
        self.components = components
        # Names already taken per interface (what the template shows there), to refuse a clash.
        self.taken: dict[str | None, set[str]] = {}
        for entry in entries or ():
            shown = entry.member.name if isinstance(entry, Telemetry) and entry.member else entry.name
            self.taken.setdefault(entry.component, set()).add(shown)

    def transforms(self, doc: Mapping[str, Any]) -> Transforms:
        computed: list[Computed] = []
        for i, table in enumerate(self.tables(doc, "computed")):
            computed.append(self.computed(table, f"computed[{i}]", computed))
        enrichments = [
            self.enrichment(t, f"enrichment[{i}]") for i, t in enumerate(self.tables(doc, "enrichment"))
        ]
        transform = doc.get("transform", {})
        if not isinstance(transform, dict):
            raise self.fail("transform", "must be a table ([transform])")
        self.keys(transform, _TRANSFORM_KEYS, "transform")
        declared = self.declared(computed, enrichments)
        dropped = self.drop(transform.get("drop", []), declared)
        renamed = self.rename(transform.get("rename", {}), declared, dropped)
        return Transforms(tuple(computed), tuple(enrichments), frozenset(dropped), tuple(renamed.items()))

    # --- helpers -----------------------------------------------------------------------------------

    def string(self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}.{key}", "missing")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", f"must be a non-empty string, not {value!r}")
        return value

    def display(self, table: Mapping[str, Any], where: str) -> str | None:
        value = self.string(table, "displayName", where)
        if value is not None and len(value) > dtdl.MAX_DISPLAY_NAME:
            raise self.fail(f"{where}.displayName", f"must be 1-{dtdl.MAX_DISPLAY_NAME} characters")
        return value

    def component(self, table: Mapping[str, Any], where: str) -> str | None:
        component = self.string(table, "component", where)
        if component is not None and self.entries is not None and component not in self.components:
            raise self.fail(f"{where}.component", f"unknown component {component!r}")
        return component

    def claim(self, component: str | None, name: str, where: str) -> None:
        taken = self.taken.setdefault(component, set())
        if name in taken or (component is None and name in self.components):
            scope = "the root interface" if component is None else f"component {component!r}"
            raise self.fail(f"{where}.name", f"name clash: {name!r} is already used in {scope}")
        taken.add(name)

    # --- tables ------------------------------------------------------------------------------------

    def computed(self, table: Mapping[str, Any], where: str, before: list[Computed]) -> Computed:
        self.keys(table, _COMPUTED_KEYS, where)
        name = self.name(table, where)
        component = self.component(table, where)
        text = self.string(table, "expression", where, required=True)
        assert text is not None
        numbers = self.inputs(component, before)
        try:
            expression = compile_expression(text, None if numbers is None else set(numbers))
        except ExpressionError as error:
            raise self.fail(f"{where}.expression", self.explain(error.reason, component)) from None
        schema = self.string(table, "schema", where) or "double"
        if schema not in COMPUTED_SCHEMAS:
            raise self.fail(f"{where}.schema", f"{schema!r} is not one of {', '.join(COMPUTED_SCHEMAS)}")
        unit = self.unit(table, where, schema)
        if self.entries is not None:
            self.claim(component, name, where)
        return Computed(name, expression, schema, component, self.display(table, where), unit)

    def inputs(self, component: str | None, before: list[Computed]) -> list[str] | None:
        """The names an expression of `component` may read: plain numeric telemetry and computed fields
        above it; None when the names are not known at load (no codec entries)."""
        if self.entries is None:
            return None
        names = [
            e.name
            for e in self.entries
            if isinstance(e, Telemetry)
            and e.component == component
            and e.member is None
            and not e.resource.multiple
            and dtdl.primitive_schema(e.resource.type) in (*dtdl.NUMERIC_SCHEMAS, "boolean")
        ]
        return names + [c.name for c in before if c.component == component]

    def explain(self, reason: str, component: str | None) -> str:
        """An unknown name that is telemetry of another kind here is a type mismatch: say so."""
        for entry in self.entries or ():
            if entry.component == component and f"unknown name {entry.name!r}" in reason:
                if isinstance(entry, Telemetry):
                    kind = "one field of a geopoint/vector" if entry.member else "not a single number"
                    return (
                        f"type mismatch: {entry.name!r} is {kind} ({entry.resource.name}); "
                        "an expression reads numbers"
                    )
                return f"{entry.name!r} is not telemetry: an expression reads the record's telemetry"
        return reason

    def unit(self, table: Mapping[str, Any], where: str, schema: str) -> SemanticUnit | None:
        unit = self.string(table, "unit", where)
        semantic = self.string(table, "semanticType", where)
        if unit is None:
            if semantic is not None:
                raise self.fail(f"{where}.semanticType", "needs a unit")
            return None
        if schema == "boolean":
            raise self.fail(f"{where}.unit", "type mismatch: a unit needs a numeric schema (double or long)")
        try:
            return SemanticUnit(*dtdl.semantic_unit(unit, semantic))
        except ValueError as exc:
            raise self.fail(f"{where}.unit", str(exc)) from None

    def enrichment(self, table: Mapping[str, Any], where: str) -> Enrichment:
        self.keys(table, _ENRICHMENT_KEYS, where)
        name = self.name(table, where)
        column = self.string(table, "column", where) or name
        kind_text = self.string(table, "as", where) or EnrichmentKind.PROPERTY.value
        try:
            kind = EnrichmentKind(kind_text)
        except ValueError:
            raise self.fail(f"{where}.as", f"{kind_text!r} is not property or telemetry") from None
        component = self.component(table, where)
        if self.entries is not None:
            self.claim(component, name, where)
        return Enrichment(name, column.strip(), kind, component, self.display(table, where))

    def declared(self, computed: list[Computed], enrichments: list[Enrichment]) -> dict[str, str]:
        """Every name drop/rename may meet, with what it is: telemetry (declared or computed) they take,
        anything else they refuse by kind."""
        found: dict[str, str] = {c.name: "computed" for c in computed}
        for entry in self.entries or ():
            if isinstance(entry, Telemetry):
                found.setdefault(entry.name, "member" if entry.member else "telemetry")
            else:
                found.setdefault(entry.name, type(entry).__name__.lower())
        for enrichment in enrichments:  # a telemetry of the same name in another interface comes first
            found.setdefault(enrichment.name, "enrichment")
        return found

    def drop(self, raw: Any, declared: dict[str, str]) -> list[str]:
        if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
            raise self.fail("transform.drop", "must be an array of telemetry names")
        for name in raw:
            self.sendable(name, declared, "transform.drop", None)
        return list(raw)

    def rename(self, raw: Any, declared: dict[str, str], dropped: list[str]) -> dict[str, str]:
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise self.fail("transform.rename", 'must be a table of names: { declared = "sent as" }')
        for old, new in raw.items():
            self.sendable(old, declared, "transform.rename", new)
            if old in dropped:
                raise self.fail("transform.rename", f"{old!r} is dropped; it cannot be renamed too")
            if not is_dtdl_name(new):
                raise self.fail("transform.rename", f"{new!r} is not a DTDL name")
            if self.entries is not None and new in declared and new not in raw and new not in dropped:
                raise self.fail("transform.rename", f"name clash: {new!r} is already used")
        return dict(raw)

    def sendable(self, name: str, declared: dict[str, str], where: str, sent_as: str | None) -> None:
        """Whether drop (`sent_as` None) or rename may name `name`: telemetry only."""
        if self.entries is None:
            return
        kind = declared.get(name)
        if kind is None:
            raise self.fail(where, f"unknown telemetry {name!r}")
        if kind == "member":
            raise self.fail(where, f"{name!r} is one field of a geopoint/vector; drop or rename the whole")
        if kind not in ("telemetry", "computed"):
            raise self.fail(where, not_telemetry(name, kind, sent_as))


def not_telemetry(name: str, kind: str, sent_as: str | None) -> str:
    """Why drop and rename refuse a property, a command or an enrichment, and what does it instead.

    Dropped telemetry stays an input of expressions: that is what a drop rule is for, and a rename keeps
    expressions on the declared name. A property, a command or an enrichment feeds no expression and is
    declared in this same file, so leaving its table out or changing its `name` there says the same thing
    once. A rename would also reach past ingress: a writable property's name is the one IoT Central writes
    and the device acknowledges under (https://learn.microsoft.com/azure/iot/concepts-convention,
    https://learn.microsoft.com/azure/iot-central/core/howto-use-properties), a command's the method IoT
    Central calls — two names for one thing, one in each direction."""
    table = f"[[{kind}]]"
    instead = f"leave its {table} table out" if sent_as is None else f'set name = "{sent_as}" in its {table}'
    article = "an" if kind[0] in "aeiou" else "a"
    return (
        f"{name!r} is {article} {kind}: drop and rename apply to telemetry (inputs of expressions); {instead}"
    )
