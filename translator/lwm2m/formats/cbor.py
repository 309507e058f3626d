"""application/cbor (CoAP Content-Format 60): one resource value as a single CBOR data item.

Objlnk travels as the text `oid:iid`, Time as an integer (a tag-1 epoch time is accepted too), Float as
the smallest of float32/float64 that keeps the value exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from translator.lwm2m.formats import _cbor
from translator.lwm2m.formats._single import single_record, single_value_path
from translator.lwm2m.formats._values import coerce, model_type, seconds_from_time, typed_for_encoding
from translator.lwm2m.model import ResourceType
from translator.lwm2m.paths import Path
from translator.lwm2m.records import ObjLink, Record, Value
from translator.lwm2m.registry import ResourceLookup

FORMAT = "CBOR"


def decode(payload: bytes, base_path: Path, lookup: ResourceLookup | None, now: float | None) -> list[Record]:
    path = single_value_path(base_path, lookup, FORMAT)
    raw = _cbor.loads(payload, FORMAT)
    return [Record(path, coerce(raw, model_type(lookup, path), path))]


def to_cbor_value(value: Value, rtype: ResourceType) -> object:
    """A typed value as the object cbor2 should write."""
    if isinstance(value, float):
        return _cbor.compact_float(value)
    if isinstance(value, datetime):
        return seconds_from_time(value)
    if isinstance(value, ObjLink):
        return str(value)
    return value


def encode(records: Sequence[Record], base_path: Path | None, lookup: ResourceLookup | None) -> bytes:
    record = single_record(records, FORMAT)
    value, rtype = typed_for_encoding(record.value, model_type(lookup, record.path), record.path)
    return _cbor.dumps(to_cbor_value(value, rtype))
