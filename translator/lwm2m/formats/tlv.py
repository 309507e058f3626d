"""LwM2M TLV (CoAP Content-Format 11542; 1542 before IANA registration).

Each entry: a type byte (bits 7-6 kind: 00 object instance, 01 resource instance, 10 multiple resource,
11 resource with value; bit 5: 16-bit identifier; bits 4-3: width of the length field, 0 meaning the
length is in bits 2-0), the identifier, the length, the value. Values are not self-describing: integers
are 1/2/4/8 bytes big-endian, floats 4 or 8, booleans 1 byte, object links 2+2 bytes, strings UTF-8 —
so without a resource model a value is returned as raw bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime
from itertools import groupby, pairwise

from translator.lwm2m.errors import ErrorKind, Lwm2mFormatError
from translator.lwm2m.formats._cbor import fits_float32
from translator.lwm2m.formats._values import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    bad,
    model_type,
    seconds_from_time,
    time_from_seconds,
    typed_for_encoding,
)
from translator.lwm2m.model import ResourceType
from translator.lwm2m.paths import Path, common_prefix
from translator.lwm2m.records import ObjLink, Record, Value
from translator.lwm2m.registry import ResourceLookup

OBJECT_INSTANCE = 0
RESOURCE_INSTANCE = 1
MULTIPLE_RESOURCE = 2
RESOURCE = 3
_KIND_NAMES = ("object instance", "resource instance", "multiple resource", "resource")
_MAX_LENGTH = 0xFFFFFF

_Entry = tuple[int, int, int, int]  # kind, identifier, value start, value end


def _entries(data: bytes, pos: int, end: int) -> list[_Entry]:
    out: list[_Entry] = []
    while pos < end:
        t = data[pos]
        pos += 1
        if t & 0x20:
            if pos + 2 > end:
                raise Lwm2mFormatError("TLV: truncated identifier")
            ident = data[pos] << 8 | data[pos + 1]
            pos += 2
        else:
            if pos >= end:
                raise Lwm2mFormatError("TLV: truncated identifier")
            ident = data[pos]
            pos += 1
        width = (t >> 3) & 3
        if width:
            if pos + width > end:
                raise Lwm2mFormatError("TLV: truncated length")
            length = int.from_bytes(data[pos : pos + width], "big")
            pos += width
        else:
            length = t & 7
        stop = pos + length
        if stop > end:
            raise Lwm2mFormatError(f"TLV: entry of {length} bytes overruns its container")
        out.append((t >> 6, ident, pos, stop))
        pos = stop
    return out


def _value(data: bytes, start: int, stop: int, rtype: ResourceType | None, path: Path) -> Value:
    if rtype is None or rtype is ResourceType.OPAQUE or rtype is ResourceType.NONE:
        return data[start:stop]
    n = stop - start
    if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
        try:
            return data[start:stop].decode("utf-8")
        except UnicodeDecodeError:
            raise bad(path, data[start:stop], rtype) from None
    if rtype is ResourceType.INTEGER or rtype is ResourceType.TIME:
        if n not in (1, 2, 4, 8):
            raise bad(path, data[start:stop], rtype)
        number = int.from_bytes(data[start:stop], "big", signed=True)
        return time_from_seconds(number, path) if rtype is ResourceType.TIME else number
    if rtype is ResourceType.FLOAT:
        if n == 4:
            return float(struct.unpack_from(">f", data, start)[0])
        if n == 8:
            return float(struct.unpack_from(">d", data, start)[0])
        raise bad(path, data[start:stop], rtype)
    if rtype is ResourceType.BOOLEAN:
        if n == 1 and data[start] < 2:
            return data[start] == 1
        raise bad(path, data[start:stop], rtype)
    if rtype is ResourceType.UNSIGNED_INTEGER:
        if n not in (1, 2, 4, 8):
            raise bad(path, data[start:stop], rtype)
        return int.from_bytes(data[start:stop], "big")
    if n != 4:  # Objlnk
        raise bad(path, data[start:stop], rtype)
    return ObjLink(data[start] << 8 | data[start + 1], data[start + 2] << 8 | data[start + 3])


def _resources(
    data: bytes, entries: list[_Entry], instance: Path, lookup: ResourceLookup | None, out: list[Record]
) -> None:
    """Decode resource-level entries of one object instance."""
    for kind, rid, start, stop in entries:
        path = Path.of((*instance, rid))
        if kind == RESOURCE:
            out.append(Record(path, _value(data, start, stop, model_type(lookup, path), path)))
        elif kind == MULTIPLE_RESOURCE:
            rtype = model_type(lookup, path)
            for ikind, riid, istart, istop in _entries(data, start, stop):
                if ikind != RESOURCE_INSTANCE:
                    raise Lwm2mFormatError(f"TLV: {_KIND_NAMES[ikind]} inside multiple resource {path}")
                ipath = Path.of((*path, riid))
                out.append(Record(ipath, _value(data, istart, istop, rtype, ipath)))
        else:
            raise Lwm2mFormatError(f"TLV: {_KIND_NAMES[kind]} where resources of {instance} were expected")


def decode(payload: bytes, base_path: Path, lookup: ResourceLookup | None, now: float | None) -> list[Record]:
    data = bytes(payload)
    top = _entries(data, 0, len(data))
    out: list[Record] = []
    level = len(base_path)
    if level == 1:
        for kind, iid, start, stop in top:
            if kind != OBJECT_INSTANCE:
                raise Lwm2mFormatError(
                    f"TLV: {_KIND_NAMES[kind]} where instances of {base_path} were expected"
                )
            _resources(data, _entries(data, start, stop), Path.of((*base_path, iid)), lookup, out)
    elif level == 2:
        # Some clients wrap an instance read in its object-instance entry.
        if len(top) == 1 and top[0][0] == OBJECT_INSTANCE and top[0][1] == base_path[1]:
            top = _entries(data, top[0][2], top[0][3])
        _resources(data, top, base_path, lookup, out)
    elif level == 3:
        instance = Path.of(base_path[:2])
        rtype = model_type(lookup, base_path)
        for entry in top:
            kind, ident, start, stop = entry
            if kind == RESOURCE_INSTANCE:
                # A multiple resource read answered with bare resource instances.
                ipath = Path.of((*base_path, ident))
                out.append(Record(ipath, _value(data, start, stop, rtype, ipath)))
            elif ident != base_path[2]:
                raise Lwm2mFormatError(f"TLV: resource {ident} in a payload for {base_path}")
            else:
                _resources(data, [entry], instance, lookup, out)
    elif level == 4:
        rtype = model_type(lookup, base_path)
        for kind, ident, start, stop in top:
            if kind != RESOURCE_INSTANCE or ident != base_path[3]:
                raise Lwm2mFormatError(f"TLV: {_KIND_NAMES[kind]} {ident} in a payload for {base_path}")
            out.append(Record(base_path, _value(data, start, stop, rtype, base_path)))
    else:
        raise Lwm2mFormatError("TLV cannot carry a payload for the root path")
    return out


# -- encoding ---------------------------------------------------------------------------------------


def _int_bytes(number: int, signed: bool) -> bytes:
    for width in (1, 2, 4, 8):
        try:
            return number.to_bytes(width, "big", signed=signed)
        except OverflowError:
            continue
    raise OverflowError(number)


def value_bytes(value: Value, rtype: ResourceType, path: Path) -> bytes:
    if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
        return str(value).encode("utf-8")
    if rtype is ResourceType.BOOLEAN:
        return b"\x01" if value else b"\x00"
    if isinstance(value, float):
        return struct.pack(">f", value) if fits_float32(value) else struct.pack(">d", value)
    if isinstance(value, datetime):
        value = seconds_from_time(value)
    if isinstance(value, ObjLink):
        return struct.pack(">HH", value.object_id, value.instance_id)
    if isinstance(value, bytes):
        return value
    if isinstance(value, int):
        unsigned = rtype is ResourceType.UNSIGNED_INTEGER
        if not ((0 if unsigned else INT64_MIN) <= value <= (UINT64_MAX if unsigned else INT64_MAX)):
            raise bad(path, value, rtype)
        return _int_bytes(value, signed=not unsigned)
    raise bad(path, value, rtype)


def _tlv(kind: int, ident: int, body: bytes) -> bytes:
    length = len(body)
    if length > _MAX_LENGTH:
        raise Lwm2mFormatError(
            f"TLV: {length} bytes is longer than a TLV entry can be", ErrorKind.NOT_ACCEPTABLE
        )
    t = kind << 6
    head = bytearray()
    if ident > 0xFF:
        t |= 0x20
        head += ident.to_bytes(2, "big")
    else:
        head.append(ident)
    if length < 8:
        t |= length
    elif length <= 0xFF:
        t |= 0x08
        head.append(length)
    elif length <= 0xFFFF:
        t |= 0x10
        head += length.to_bytes(2, "big")
    else:
        t |= 0x18
        head += length.to_bytes(3, "big")
    return bytes((t,)) + bytes(head) + body


def _leaf(record: Record, lookup: ResourceLookup | None) -> bytes:
    value, rtype = typed_for_encoding(record.value, model_type(lookup, record.path), record.path)
    return value_bytes(value, rtype, record.path)


def _encode_resources(records: list[Record], lookup: ResourceLookup | None) -> bytes:
    """Resource-level entries for records of one object instance (sorted by path)."""
    out = bytearray()
    for rid, group_iter in groupby(records, key=lambda r: r.path[2]):
        group = list(group_iter)
        if len(group) == 1 and len(group[0].path) == 3:
            out += _tlv(RESOURCE, rid, _leaf(group[0], lookup))
            continue
        if any(len(r.path) != 4 for r in group):
            raise Lwm2mFormatError(
                f"TLV: resource {group[0].path[:3]} has both a value and instances", ErrorKind.NOT_ACCEPTABLE
            )
        body = b"".join(_tlv(RESOURCE_INSTANCE, r.path[3], _leaf(r, lookup)) for r in group)
        out += _tlv(MULTIPLE_RESOURCE, rid, body)
    return bytes(out)


def sorted_unique(records: Sequence[Record], base: Path, fmt: str) -> list[Record]:
    ordered = sorted(records, key=lambda r: r.path)
    for prev, cur in pairwise(ordered):
        if prev.path == cur.path:
            raise Lwm2mFormatError(f"{fmt}: {cur.path} appears twice", ErrorKind.NOT_ACCEPTABLE)
    for r in ordered:
        if not r.path.startswith(base):
            raise Lwm2mFormatError(f"{fmt}: {r.path} is not under {base}", ErrorKind.NOT_ACCEPTABLE)
        if len(r.path) < 3:
            raise Lwm2mFormatError(f"{fmt}: {r.path} is not a resource", ErrorKind.NOT_ACCEPTABLE)
    return ordered


def encode(records: Sequence[Record], base_path: Path | None, lookup: ResourceLookup | None) -> bytes:
    base = common_prefix([r.path for r in records]) if base_path is None else base_path
    ordered = sorted_unique(records, base, "TLV")
    level = len(base)
    if level == 0:
        raise Lwm2mFormatError("TLV cannot carry values of several objects", ErrorKind.NOT_ACCEPTABLE)
    if level == 1:
        return b"".join(
            _tlv(OBJECT_INSTANCE, iid, _encode_resources(list(group), lookup))
            for iid, group in groupby(ordered, key=lambda r: r.path[1])
        )
    if level == 4:
        return b"".join(_tlv(RESOURCE_INSTANCE, r.path[3], _leaf(r, lookup)) for r in ordered)
    return _encode_resources(ordered, lookup)
