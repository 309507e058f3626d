"""LwM2M JSON (CoAP Content-Format 11543; 1543 before IANA registration), the LwM2M 1.0 JSON format.

`{"bn": "/3/0/", "bt": 1500000000, "e": [{"n": "0", "sv": "..."}, {"n": "9", "v": 100, "t": -5}]}`.
Values: `v` number (also Time), `sv` string (Opaque base64-encoded), `bv` boolean, `ov` object link.
Names join `bn` + `n` literally, like SenML; times are `bt` + `t` with SenML's relative-time rule.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from datetime import datetime

from translator.lwm2m.errors import Lwm2mFormatError
from translator.lwm2m.formats._senml import check_absolute_time, name_split
from translator.lwm2m.formats._values import (
    bad,
    check_finite,
    coerce,
    model_type,
    resolve_time,
    seconds_from_time,
    typed_for_encoding,
)
from translator.lwm2m.formats.senml_json import dump_json, load_json
from translator.lwm2m.model import ResourceType
from translator.lwm2m.paths import Path
from translator.lwm2m.records import ObjLink, Record
from translator.lwm2m.registry import ResourceLookup

FORMAT = "LwM2M JSON"
_VALUE_KEYS = ("v", "sv", "bv", "ov")


def _number(x: object) -> bool:
    t = type(x)
    return t is int or t is float


def _entry(
    e: object,
    bn: str | None,
    bt: float | None,
    base_path: Path,
    *,
    lookup: ResourceLookup | None,
    now: float | None,
) -> Record:
    if type(e) is not dict:
        raise Lwm2mFormatError(f"{FORMAT}: an entry is not an object")
    n = e.get("n", "")
    if type(n) is not str:
        raise Lwm2mFormatError(f"{FORMAT}: n is not a string")
    if bn is not None:
        name = bn + n
    elif n.startswith("/"):
        name = n
    else:
        # Without bn, names are relative to the request path.
        name = f"{base_path}/{n}" if base_path else f"/{n}"
    path = Path.parse(name)
    present = [k for k in _VALUE_KEYS if k in e]
    if len(present) > 1:
        raise Lwm2mFormatError(f"{path}: an entry has more than one value")
    t = e.get("t")
    if t is not None and (not _number(t) or not math.isfinite(t)):
        raise Lwm2mFormatError(f"{path}: t is not a finite number")
    if t is not None or bt is not None:
        time: float | None = resolve_time(float((t or 0) + (bt or 0)), now)
    else:
        time = None
    if not present:
        return Record(path, None, time)
    if len(path) < 3:
        raise Lwm2mFormatError(f"{FORMAT}: value for {path}, which is not a resource")
    key = present[0]
    raw = e[key]
    rtype = model_type(lookup, path)
    value: object
    if key == "v":
        if not _number(raw):
            raise Lwm2mFormatError(f"{path}: v is not a number")
        value = raw
    elif key == "bv":
        if type(raw) is not bool:
            raise Lwm2mFormatError(f"{path}: bv is not a boolean")
        value = raw
    elif type(raw) is not str:
        raise Lwm2mFormatError(f"{path}: {key} is not a string")
    elif key == "ov":
        value = ObjLink.parse(raw)
    elif rtype is ResourceType.OPAQUE:
        try:
            value = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise bad(path, raw, rtype) from None
    else:
        value = raw
    return Record(path, coerce(value, rtype, path), time)


def decode(payload: bytes, base_path: Path, lookup: ResourceLookup | None, now: float | None) -> list[Record]:
    doc = load_json(payload, FORMAT)
    if type(doc) is not dict:
        raise Lwm2mFormatError(f"{FORMAT}: payload is not a JSON object")
    bn = doc.get("bn")
    if bn is not None and type(bn) is not str:
        raise Lwm2mFormatError(f"{FORMAT}: bn is not a string")
    bt = doc.get("bt")
    if bt is not None and (not _number(bt) or not math.isfinite(bt)):
        raise Lwm2mFormatError(f"{FORMAT}: bt is not a finite number")
    entries = doc.get("e")
    if type(entries) is not list:
        raise Lwm2mFormatError(f"{FORMAT}: e is not an array")
    return [_entry(e, bn, bt, base_path, lookup=lookup, now=now) for e in entries]


def encode(records: Sequence[Record], base_path: Path | None, lookup: ResourceLookup | None) -> bytes:
    bn, names = name_split(records, base_path)
    entries: list[dict[str, object]] = []
    for record, name in zip(records, names, strict=True):
        entry: dict[str, object] = {"n": name}
        if record.value is not None:
            if len(record.path) < 3:
                raise Lwm2mFormatError(f"{record.path}: only resources carry values")
            value, rtype = typed_for_encoding(record.value, model_type(lookup, record.path), record.path)
            if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
                entry["sv"] = value
            elif rtype is ResourceType.BOOLEAN:
                entry["bv"] = value
            elif isinstance(value, bytes):
                entry["sv"] = base64.b64encode(value).decode("ascii")
            elif isinstance(value, ObjLink):
                entry["ov"] = str(value)
            elif isinstance(value, datetime):
                entry["v"] = seconds_from_time(value)
            elif isinstance(value, float):
                check_finite(value, record.path, FORMAT)
                entry["v"] = value
            else:
                entry["v"] = value
        if record.time is not None:
            entry["t"] = check_absolute_time(record.time, record.path, FORMAT)
        entries.append(entry)
    doc: dict[str, object] = {"bn": bn, "e": entries} if bn else {"e": entries}
    return dump_json(doc, FORMAT)
