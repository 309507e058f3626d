"""Loader for OMA DDF XML object definitions (the files of the OMA LwM2M registry).

Handles the quirks of real files: a UTF-8 BOM, CDATA descriptions, the 1.0 and 1.1 schemas (which differ
in element order and optional elements, not in the facts read here), an optional XML namespace, stray
whitespace inside values, and both `Unsigned Integer` spellings. Descriptions are not kept.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path as FsPath

from translator.lwm2m.errors import DdfError
from translator.lwm2m.model import ObjectModel, Operations, ResourceModel, ResourceType
from translator.lwm2m.paths import MAX_ID

# A DDF file is a few tens of KB; anything far larger is not an object definition.
MAX_DDF_BYTES = 4 * 1024 * 1024


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _text(elem: ET.Element, name: str, default: str = "") -> str:
    c = _child(elem, name)
    if c is None:
        return default
    return " ".join("".join(c.itertext()).split())


def _flag(elem: ET.Element, name: str, yes: str, no: str, *, default: bool, where: str) -> bool:
    value = _text(elem, name).lower()
    if not value:
        return default
    if value == yes:
        return True
    if value == no:
        return False
    raise DdfError(f"<{name}> is {value!r}, expected {yes!r} or {no!r}", where)


def _id(text: str, what: str, where: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        raise DdfError(f"{what} {text!r} is not an integer in 0..{MAX_ID}", where)
    return int(text)


def _resource(item: ET.Element, where: str) -> ResourceModel:
    rid = _id((item.get("ID") or "").strip(), "resource ID", where)
    at = f"{where} resource {rid}"
    try:
        rtype = ResourceType.from_ddf(_text(item, "Type"))
        ops = Operations.from_ddf(_text(item, "Operations"))
    except ValueError as exc:
        raise DdfError(str(exc), at) from None
    return ResourceModel(
        id=rid,
        name=_text(item, "Name"),
        type=rtype,
        operations=ops,
        multiple=_flag(item, "MultipleInstances", "multiple", "single", default=False, where=at),
        mandatory=_flag(item, "Mandatory", "mandatory", "optional", default=False, where=at),
        units=_text(item, "Units"),
        range=_text(item, "RangeEnumeration"),
    )


def _object(obj: ET.Element, source: str) -> ObjectModel:
    oid = _id(_text(obj, "ObjectID"), "ObjectID", source)
    where = f"{source} object {oid}" if source else f"object {oid}"
    resources_elem = _child(obj, "Resources")
    items = [] if resources_elem is None else [c for c in resources_elem if _local(c.tag) == "Item"]
    resources = tuple(sorted((_resource(i, where) for i in items), key=lambda r: r.id))
    try:
        return ObjectModel(
            id=oid,
            name=_text(obj, "Name"),
            version=_text(obj, "ObjectVersion") or "1.0",
            lwm2m_version=_text(obj, "LWM2MVersion") or "1.0",
            multiple=_flag(obj, "MultipleInstances", "multiple", "single", default=True, where=where),
            mandatory=_flag(obj, "Mandatory", "mandatory", "optional", default=False, where=where),
            urn=_text(obj, "ObjectURN"),
            resources=resources,
        )
    except ValueError as exc:
        raise DdfError(str(exc), where) from None


def parse_ddf(data: bytes | str, source: str = "") -> tuple[ObjectModel, ...]:
    """Parse one DDF document; it holds one or more `<Object>` definitions."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_DDF_BYTES:
        raise DdfError(f"larger than {MAX_DDF_BYTES} bytes", source)
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    # No DTD is needed by any object definition; refusing it rules out entity-expansion tricks.
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise DdfError("DOCTYPE/ENTITY declarations are not accepted", source)
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise DdfError(f"not well-formed XML: {exc}", source) from None
    objects = [root] if _local(root.tag) == "Object" else [c for c in root if _local(c.tag) == "Object"]
    if not objects:
        raise DdfError("no <Object> element", source)
    return tuple(_object(o, source) for o in objects)


def load_ddf_file(path: str | FsPath) -> tuple[ObjectModel, ...]:
    p = FsPath(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_DDF_BYTES + 1)
    except OSError as exc:
        raise DdfError(f"cannot read: {exc.strerror or exc}", str(p)) from None
    return parse_ddf(data, str(p))


def load_ddf_directory(directory: str | FsPath) -> tuple[ObjectModel, ...]:
    """Every `*.xml` file of a directory (not recursive), in file-name order."""
    d = FsPath(directory)
    if not d.is_dir():
        raise DdfError("not a directory", str(d))
    files = sorted(f for f in d.iterdir() if f.suffix.lower() == ".xml" and f.is_file())
    return tuple(_flatten(load_ddf_file(f) for f in files))


def _flatten(groups: Iterable[tuple[ObjectModel, ...]]) -> list[ObjectModel]:
    return [m for g in groups for m in g]
