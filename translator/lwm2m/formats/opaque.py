"""application/octet-stream (CoAP Content-Format 42): one Opaque resource value, raw bytes."""

from __future__ import annotations

from collections.abc import Sequence

from translator.lwm2m.errors import ErrorKind, Lwm2mFormatError
from translator.lwm2m.formats._single import single_record, single_value_path
from translator.lwm2m.formats._values import model_type
from translator.lwm2m.model import ResourceType
from translator.lwm2m.paths import Path
from translator.lwm2m.records import Record
from translator.lwm2m.registry import ResourceLookup

FORMAT = "opaque"
_ALLOWED = (None, ResourceType.OPAQUE, ResourceType.NONE)


def decode(payload: bytes, base_path: Path, lookup: ResourceLookup | None, now: float | None) -> list[Record]:
    path = single_value_path(base_path, lookup, FORMAT)
    rtype = model_type(lookup, path)
    if rtype not in _ALLOWED:
        raise Lwm2mFormatError(f"{path}: opaque payload for a {rtype.value if rtype else ''} resource")
    return [Record(path, bytes(payload))]


def encode(records: Sequence[Record], base_path: Path | None, lookup: ResourceLookup | None) -> bytes:
    record = single_record(records, FORMAT)
    rtype = model_type(lookup, record.path)
    if rtype not in _ALLOWED or not isinstance(record.value, bytes):
        raise Lwm2mFormatError(
            f"{record.path}: only Opaque values can be sent as opaque", ErrorKind.NOT_ACCEPTABLE
        )
    return record.value
