"""The DTDL v2 rules our templates rely on, checked in Python so a failure says which rule broke.

Microsoft's parser is the authority (test_dtdl_parser); this is the explanation.
"""

from __future__ import annotations

import re
from typing import Any

from translator.codec import dtdl

NAME = re.compile(r"^[a-zA-Z](?:[a-zA-Z0-9_]*[a-zA-Z0-9])?$")
PRIMITIVES = {
    "boolean",
    "date",
    "dateTime",
    "double",
    "duration",
    "float",
    "integer",
    "long",
    "string",
    "time",
}


def problems(interfaces: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    ids = [i.get("@id") for i in interfaces]
    if len(set(ids)) != len(ids):
        found.append(f"interface ids repeat: {ids}")
    known = set(ids)
    for interface in interfaces:
        where = interface.get("@id", "?")
        context = interface.get("@context")
        extended = context == [dtdl.CONTEXT, dtdl.IOTC_CONTEXT]
        if context != dtdl.CONTEXT and not extended:
            found.append(f"{where}: @context is not {dtdl.CONTEXT} (and the IoT Central extension)")
        if interface.get("@type") != "Interface":
            found.append(f"{where}: @type is not Interface")
        if not isinstance(where, str) or not dtdl.is_dtmi(where):
            found.append(f"{where}: not a DTMI of at most 128 characters")
        found += _display(interface, where)
        contents = interface.get("contents", [])
        if len(contents) > dtdl.MAX_CONTENTS:
            found.append(f"{where}: {len(contents)} contents > {dtdl.MAX_CONTENTS}")
        names = [c.get("name") for c in contents]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            found.append(f"{where}: duplicate names {sorted(dupes)}")
        for item in contents:
            found += _content(item, f"{where}/{item.get('name')}", known, extended)
    return found


def _display(item: dict[str, Any], where: str) -> list[str]:
    found = []
    if "displayName" in item and not 1 <= len(item["displayName"]) <= dtdl.MAX_DISPLAY_NAME:
        found.append(f"{where}: displayName length {len(item['displayName'])}")
    if "description" in item and not 1 <= len(item["description"]) <= dtdl.MAX_DESCRIPTION:
        found.append(f"{where}: description length")
    return found


def _name(name: Any, where: str) -> list[str]:
    if not isinstance(name, str) or len(name) > 64 or not NAME.match(name):
        return [f"{where}: bad name {name!r}"]
    return []


# IoT Central's extension (dtmi:iotcentral:context;2): adjunct type → (schema, semantic type of its unit).
IOTC_ADJUNCTS = {
    "Location": ("geopoint", None),
    "AccelerationVector": ("vector", "Acceleration"),
    "VelocityVector": ("vector", "Velocity"),
}


def _content(item: dict[str, Any], where: str, interfaces: set[Any], extended: bool = False) -> list[str]:
    found = _name(item.get("name"), where) + _display(item, where)
    types = item.get("@type")
    types = types if isinstance(types, list) else [types]
    kind, semantic = types[0], types[1:]
    if item.get("schema") in ("geopoint", "vector"):
        if not extended:
            return [*found, f"{where}: {item['schema']} needs the IoT Central context"]
        if kind not in ("Telemetry", "Property") or len(semantic) > 1:
            return [*found, f"{where}: {item['schema']} on {types}"]
        if semantic:
            schema, unit_type = IOTC_ADJUNCTS.get(semantic[0], (None, None))
            if schema != item["schema"]:
                found.append(f"{where}: {semantic[0]} does not allow schema {item['schema']}")
            if "unit" in item and item["unit"] not in dtdl.SEMANTIC_UNITS.get(unit_type or "", ()):
                found.append(f"{where}: {item['unit']} is not a unit of {semantic[0]}")
        elif "unit" in item:
            found.append(f"{where}: a unit on a plain {item['schema']}")
        return found
    if kind == "Component":
        if item.get("schema") not in interfaces:
            found.append(f"{where}: component schema {item.get('schema')} is not among the interfaces")
        return found
    if kind == "Command":
        for key in ("request", "response"):
            if key in item:
                found += _name(item[key].get("name"), f"{where}.{key}")
                found += _schema(item[key].get("schema"), f"{where}.{key}", allow_array=True)
        return found
    if kind not in ("Telemetry", "Property"):
        return [*found, f"{where}: unexpected @type {kind}"]
    found += _schema(item.get("schema"), where, allow_array=kind == "Telemetry")
    if "unit" in item:
        if len(semantic) != 1:
            found.append(f"{where}: a unit needs exactly one semantic type, has {semantic}")
        elif item["unit"] not in dtdl.SEMANTIC_UNITS.get(semantic[0], ()):
            found.append(f"{where}: {item['unit']} is not a unit of {semantic[0]}")
        if item.get("schema") not in dtdl.NUMERIC_SCHEMAS:
            found.append(f"{where}: a semantic unit needs a numeric schema, not {item.get('schema')}")
    elif semantic:
        found.append(f"{where}: semantic type {semantic} without a unit")
    if "writable" in item and (kind != "Property" or not isinstance(item["writable"], bool)):
        found.append(f"{where}: writable on a {kind}")
    return found


def _schema(schema: Any, where: str, *, allow_array: bool, depth: int = 0) -> list[str]:
    if depth > 5:
        return [f"{where}: schema deeper than 5 levels"]
    if isinstance(schema, str):
        return [] if schema in PRIMITIVES else [f"{where}: unknown schema {schema}"]
    if not isinstance(schema, dict):
        return [f"{where}: schema is {type(schema).__name__}"]
    kind = schema.get("@type")
    if kind == "Map":
        key, value = schema.get("mapKey", {}), schema.get("mapValue", {})
        found = _name(key.get("name"), where) + _name(value.get("name"), where)
        if key.get("schema") != "string":
            found.append(f"{where}: map key schema must be string")
        return found + _schema(value.get("schema"), where, allow_array=allow_array, depth=depth + 1)
    if kind == "Object":
        fields = schema.get("fields", [])
        names = [f.get("name") for f in fields]
        found = [f"{where}: duplicate field names"] if len(set(names)) != len(names) else []
        for f in fields:
            found += _name(f.get("name"), where)
            found += _schema(f.get("schema"), where, allow_array=allow_array, depth=depth + 1)
        return found
    if kind == "Array" and allow_array:
        return _schema(schema.get("elementSchema"), where, allow_array=True, depth=depth + 1)
    return [f"{where}: schema type {kind} not allowed here"]
