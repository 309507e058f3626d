"""Codec files: TOML in, a validated `Codec` out. The only I/O is reading the one file. This module parses
the structure (tables → components, entries, transforms); each value is checked by codec/field_reader.py.

Layout (see docs/codec.md for the full reference):

    [template]            id (DTMI), displayName, description
    [[component]]         name, path = "/3303/0", displayName, interface (DTMI, optional)
    [[telemetry]]         path, name, displayName, component, unit, semanticType, scale, offset,
                          pmin, pmax, gt, lt, st
    [[property]]          path, name, displayName, component, writable, unit, semanticType, scale, offset
    [[command]]           name, operation = execute|read|write, path, displayName, component,
                          arguments = [{name, digit, schema}] (execute), resources = [ids] (instance read)
    [[computed]], [[enrichment]], [transform]   ingress transforms (codec/transform_loader.py)

Instances: a component stands for one object instance. An entry whose path has a wildcard instance
(`/3303/*/5700`) is stamped into every component of that object; a concrete path goes to the component of
that instance; `component = "x"` picks one explicitly. Entries for instances without a component live in
the root interface, where a wildcard is only allowed on single-instance objects (bound to instance 0;
the template must be static, so several instances cannot share one root name).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from translator.codec import dtdl
from translator.codec.check import check_codec
from translator.codec.connection import check_connection, parse_connection
from translator.codec.errors import CodecFileError
from translator.codec.field_reader import FieldReader
from translator.codec.locate import field_line
from translator.codec.names import is_dtdl_name, resource_names
from translator.codec.spec import (
    Argument,
    Codec,
    Command,
    Component,
    Compound,
    Member,
    Operation,
    PathPattern,
    Property,
    ReadField,
    Telemetry,
)
from translator.codec.transform_loader import TRANSFORM_TABLES, load_transforms
from translator.lwm2m import ObjectModel, ObjectRegistry, ResourceModel

_TOP = frozenset({"template", "component", "telemetry", "property", "command"}) | TRANSFORM_TABLES
_TEMPLATE_KEYS = frozenset({"id", "displayName", "description", "connection"})
_COMPONENT_KEYS = frozenset({"name", "path", "displayName", "interface"})
_COMMON = frozenset({"path", "name", "displayName", "component"})
_VALUE_KEYS = frozenset({"unit", "semanticType", "scale", "offset"})
_OBSERVE_KEYS = frozenset({"pmin", "pmax", "gt", "lt", "st"})
_COMPOUND_KEYS = frozenset({"geopoint", "vector", "field"})
_TELEMETRY_KEYS = _COMMON | _VALUE_KEYS | _OBSERVE_KEYS | _COMPOUND_KEYS
_PROPERTY_KEYS = _COMMON | _VALUE_KEYS | {"writable"}
_COMMAND_KEYS = _COMMON | {"operation", "arguments", "resources"}
_ARGUMENT_KEYS = frozenset({"name", "digit", "schema"})
_ARGUMENT_SCHEMAS = {"string": "string", "integer": "long", "double": "double", "boolean": "boolean"}


def load_codec(path: str | FsPath, registry: ObjectRegistry) -> Codec:
    """Read and validate one codec file; every problem is a `CodecFileError` naming file and field."""
    source = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CodecFileError(source, "(file)", f"cannot read: {exc}") from None
    return parse_codec(text, registry, source=source)


def parse_codec(text: str, registry: ObjectRegistry, *, source: str = "<codec>") -> Codec:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CodecFileError(source, "(file)", f"not valid TOML: {exc}") from None
    try:
        return _Loader(source, registry).codec(document)
    except CodecFileError as error:
        if error.line is not None or error.source != source:
            raise
        raise CodecFileError(source, error.field, error.reason, field_line(text, error.field)) from None


class _Loader(FieldReader):
    """The file's structure: tables into components and entries (bound to their instances), then the
    codec; each value is read and checked by `FieldReader` (codec/field_reader.py)."""

    # --- structure ---------------------------------------------------------------------------------

    def codec(self, doc: Mapping[str, Any]) -> Codec:
        self.keys(doc, _TOP, "")
        template = doc.get("template")
        if not isinstance(template, dict):
            raise self.fail("template", "missing [template] table")
        self.keys(template, _TEMPLATE_KEYS, "template")
        model_id = self.string(template, "id", "template", required=True)
        assert model_id is not None
        if not dtdl.is_dtmi(model_id):
            raise self.fail(
                "template.id", f"{model_id!r} is not a DTMI (dtmi:segment:segment;version, ≤ 128 chars)"
            )
        display = self.display(template, "template")
        description = self.string(template, "description", "template")
        if description is not None and not 1 <= len(description) <= dtdl.MAX_DESCRIPTION:
            raise self.fail("template.description", f"must be 1-{dtdl.MAX_DESCRIPTION} characters")

        components = [
            self.component(t, f"component[{i}]", model_id)
            for i, t in enumerate(self.tables(doc, "component"))
        ]
        self.check_components(components)
        telemetry: list[Telemetry] = []
        properties: list[Property] = []
        commands: list[Command] = []
        for i, t in enumerate(self.tables(doc, "telemetry")):
            telemetry += self.telemetry(t, f"telemetry[{i}]", components)
        for i, t in enumerate(self.tables(doc, "property")):
            properties += self.property(t, f"property[{i}]", components)
        for i, t in enumerate(self.tables(doc, "command")):
            commands += self.command(t, f"command[{i}]", components)
        names = frozenset(c.name for c in components)
        transforms = load_transforms(doc, self.source, [*telemetry, *properties, *commands], names)
        codec = Codec(
            source=self.source,
            model_id=model_id,
            display_name=display,
            description=description,
            components=tuple(components),
            telemetry=tuple(telemetry),
            properties=tuple(properties),
            commands=tuple(commands),
            transforms=transforms,
            connection=parse_connection(self.source, template),
        )
        check_codec(codec)
        check_connection(codec)
        return codec

    # --- components --------------------------------------------------------------------------------

    def component(self, table: Mapping[str, Any], where: str, model_id: str) -> Component:
        self.keys(table, _COMPONENT_KEYS, where)
        name = self.name(table, where)
        pattern = self.pattern(table, where, resource=False)
        if pattern.instance_id is None or pattern.resource_id is not None:
            raise self.fail(f"{where}.path", "a component stands for one object instance: /object/instance")
        interface = self.string(table, "interface", where)
        if interface is None:
            path, version = dtdl.dtmi_parts(model_id)
            interface = f"{path}:{name};{version}"
        if not dtdl.is_dtmi(interface):
            raise self.fail(f"{where}.interface", f"{interface!r} is not a DTMI of at most 128 characters")
        return Component(name, pattern.object_id, pattern.instance_id, interface, self.display(table, where))

    def targets(
        self, table: Mapping[str, Any], where: str, pattern: PathPattern, components: list[Component]
    ) -> list[tuple[str | None, PathPattern]]:
        """Where an entry lands: (component, bound pattern) pairs, per the instance rules above."""
        explicit = self.string(table, "component", where)
        if explicit is not None:
            comp = next((c for c in components if c.name == explicit), None)
            if comp is None:
                raise self.fail(f"{where}.component", f"unknown component {explicit!r}")
            if comp.object_id != pattern.object_id or pattern.instance_id not in (None, comp.instance_id):
                raise self.fail(
                    f"{where}.component",
                    f"component {explicit!r} is /{comp.object_id}/{comp.instance_id}, not {pattern}",
                )
            return [(comp.name, pattern.bind(comp.instance_id))]
        matching = [
            c
            for c in components
            if c.object_id == pattern.object_id and pattern.instance_id in (None, c.instance_id)
        ]
        if matching:
            return [(c.name, pattern.bind(c.instance_id)) for c in matching]
        if pattern.instance_id is None and self.model(pattern).multiple:
            raise self.fail(
                f"{where}.path",
                f"object {pattern.object_id} has multiple instances: a wildcard path needs a "
                "[[component]] per instance, or name one instance in the path",
            )
        # Single-instance objects always use instance 0 (LwM2M core specification), so the root entry is
        # bound to it: no wildcard survives loading, and downlink paths are always concrete.
        return [(None, pattern.bind(0) if pattern.instance_id is None else pattern)]

    # --- entries -----------------------------------------------------------------------------------

    def telemetry(self, table: Mapping[str, Any], where: str, components: list[Component]) -> list[Telemetry]:
        self.keys(table, _TELEMETRY_KEYS, where)
        pattern = self.pattern(table, where)
        resource = self.resource(pattern, where)
        if not resource.readable:
            raise self.fail(
                f"{where}.path", f"{resource.name} ({pattern}) is not readable, it cannot be telemetry"
            )
        name = self.name(table, where)
        display = self.display(table, where)
        scaling = self.scaling(table, where, resource)
        unit = self.unit(table, where, resource, not scaling.identity)
        observe = self.observe(table, where, resource)
        member = self.member(table, where)
        return [
            Telemetry(name, bound, resource, comp, display, unit, scaling, observe, member)
            for comp, bound in self.targets(table, where, pattern, components)
        ]

    def member(self, table: Mapping[str, Any], where: str) -> Member | None:
        """`geopoint = "location"` / `vector = "acceleration"` with `field`: one field of IoT Central's
        compound telemetry (the member's own name stays the codec's, the compound is what is exported)."""
        chosen = [(Compound(k), table[k]) for k in ("geopoint", "vector") if k in table]
        if not chosen:
            if "field" in table:
                raise self.fail(f"{where}.field", 'needs geopoint = "name" or vector = "name"')
            return None
        if len(chosen) > 1:
            raise self.fail(f"{where}.vector", "a telemetry is part of a geopoint or of a vector, not both")
        schema, compound = chosen[0]
        if not isinstance(compound, str) or not is_dtdl_name(compound):
            raise self.fail(f"{where}.{schema.value}", f"{compound!r} is not a DTDL name")
        field = self.string(table, "field", where, required=True)
        if field not in schema.fields:
            raise self.fail(f"{where}.field", f"{field!r} is not one of {', '.join(schema.fields)}")
        return Member(compound, schema, field, compound[:1].upper() + compound[1:])

    def property(self, table: Mapping[str, Any], where: str, components: list[Component]) -> list[Property]:
        self.keys(table, _PROPERTY_KEYS, where)
        pattern = self.pattern(table, where)
        resource = self.resource(pattern, where)
        writable = table.get("writable", False)
        if not isinstance(writable, bool):
            raise self.fail(f"{where}.writable", "must be true or false")
        if writable and not resource.writable:
            raise self.fail(f"{where}.writable", f"{resource.name} ({pattern}) is not writable in its model")
        if not writable and not resource.readable:
            raise self.fail(f"{where}.path", f"{resource.name} ({pattern}) is not readable")
        if dtdl.primitive_schema(resource.type) is None:
            raise self.fail(
                f"{where}.path", f"type mismatch: {resource.name} has no value ({resource.type.value})"
            )
        name = self.name(table, where)
        display = self.display(table, where)
        scaling = self.scaling(table, where, resource)
        unit = self.unit(table, where, resource, not scaling.identity)
        return [
            Property(name, bound, resource, writable, comp, display, unit, scaling)
            for comp, bound in self.targets(table, where, pattern, components)
        ]

    def command(self, table: Mapping[str, Any], where: str, components: list[Component]) -> list[Command]:
        self.keys(table, _COMMAND_KEYS, where)
        name = self.name(table, where)
        display = self.display(table, where)
        text = self.string(table, "operation", where, required=True)
        try:
            operation = Operation(text)
        except ValueError:
            raise self.fail(f"{where}.operation", f"{text!r} is not execute, read or write") from None
        pattern = self.pattern(table, where, resource=operation is not Operation.READ)
        if operation is not Operation.EXECUTE and "arguments" in table:
            raise self.fail(f"{where}.arguments", "only execute commands take arguments")
        if operation is not Operation.READ and "resources" in table:
            raise self.fail(f"{where}.resources", "only instance-level read commands list resources")
        resource: ResourceModel | None = None
        arguments: tuple[Argument, ...] = ()
        fields: tuple[ReadField, ...] = ()
        if pattern.resource_id is not None:
            resource = self.resource(pattern, where)
            needed = {Operation.EXECUTE: resource.executable, Operation.READ: resource.readable}
            if not needed.get(operation, resource.writable):
                raise self.fail(
                    f"{where}.operation",
                    f"{resource.name} ({pattern}) does not allow {operation.value} (its operations: "
                    f"{resource.operations.code or 'none'})",
                )
            if operation is not Operation.EXECUTE and dtdl.primitive_schema(resource.type) is None:
                raise self.fail(f"{where}.path", f"type mismatch: {resource.name} has no value")
            if "resources" in table:
                raise self.fail(
                    f"{where}.resources", "only an instance-level path (/object/instance) lists resources"
                )
        if operation is Operation.EXECUTE:
            arguments = self.arguments(table, where)
        if operation is Operation.READ and resource is None:
            fields = self.read_fields(table, where, self.model(pattern))
        return [
            Command(name, operation, bound, comp, display, resource, arguments, fields)
            for comp, bound in self.targets(table, where, pattern, components)
        ]

    def arguments(self, table: Mapping[str, Any], where: str) -> tuple[Argument, ...]:
        raw = table.get("arguments", [])
        if not isinstance(raw, list) or not all(isinstance(a, dict) for a in raw):
            raise self.fail(f"{where}.arguments", "must be an array of tables {name, digit, schema}")
        found: list[Argument] = []
        for i, arg in enumerate(raw):
            at = f"{where}.arguments[{i}]"
            self.keys(arg, _ARGUMENT_KEYS, at)
            name = self.name(arg, at)
            digit = arg.get("digit")
            if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit <= 9:
                raise self.fail(f"{at}.digit", "must be an Execute argument number 0-9")
            schema = self.string(arg, "schema", at) or "string"
            if schema not in _ARGUMENT_SCHEMAS:
                raise self.fail(f"{at}.schema", f"{schema!r} is not one of {', '.join(_ARGUMENT_SCHEMAS)}")
            if any(a.name == name for a in found):
                raise self.fail(f"{at}.name", f"name clash: argument {name!r} twice")
            if any(a.digit == digit for a in found):
                raise self.fail(f"{at}.digit", f"argument {digit} is mapped twice")
            found.append(Argument(name, digit, _ARGUMENT_SCHEMAS[schema]))
        return tuple(found)

    def read_fields(self, table: Mapping[str, Any], where: str, model: ObjectModel) -> tuple[ReadField, ...]:
        readable = {
            r.id: r for r in model.resources if r.readable and dtdl.primitive_schema(r.type) is not None
        }
        names = resource_names({r.id: r.name for r in model.resources})
        wanted = table.get("resources")
        if wanted is None:
            ids = sorted(readable)
        elif isinstance(wanted, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in wanted):
            ids = list(wanted)
        else:
            raise self.fail(f"{where}.resources", "must be an array of resource ids")
        for rid in ids:
            if rid not in readable:
                raise self.fail(f"{where}.resources", f"object {model.id} has no readable resource {rid}")
        if not ids:
            raise self.fail(f"{where}.path", f"object {model.id} has no readable resources")
        return tuple(ReadField(names[rid], readable[rid]) for rid in ids)
