"""Shared checks of the single-value formats (text/plain, opaque, CBOR)."""

from __future__ import annotations

from collections.abc import Sequence

from translator.lwm2m.errors import ErrorKind, Lwm2mFormatError
from translator.lwm2m.formats._values import model_multiple
from translator.lwm2m.paths import Path
from translator.lwm2m.records import Record
from translator.lwm2m.registry import ResourceLookup


def single_value_path(base_path: Path, lookup: ResourceLookup | None, fmt: str) -> Path:
    """The path a single-value payload belongs to: a resource or a resource instance."""
    if len(base_path) < 3:
        raise Lwm2mFormatError(f"{fmt} carries one resource value, not {base_path}")
    if len(base_path) == 3 and model_multiple(lookup, base_path):
        raise Lwm2mFormatError(f"{fmt} cannot carry the multiple-instance resource {base_path}")
    return base_path


def single_record(records: Sequence[Record], fmt: str) -> Record:
    if len(records) != 1:
        raise Lwm2mFormatError(
            f"{fmt} carries exactly one value, got {len(records)} records", ErrorKind.NOT_ACCEPTABLE
        )
    record = records[0]
    if len(record.path) < 3:
        raise Lwm2mFormatError(
            f"{fmt} carries one resource value, not {record.path}", ErrorKind.NOT_ACCEPTABLE
        )
    return record
