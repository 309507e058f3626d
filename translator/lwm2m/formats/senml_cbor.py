"""SenML CBOR (CoAP Content-Format 112): SenML with integer labels; the telemetry hot path."""

from __future__ import annotations

from collections.abc import Sequence

from translator.lwm2m.formats import _cbor
from translator.lwm2m.formats._senml import CBOR_LABELS, build, resolve
from translator.lwm2m.paths import Path
from translator.lwm2m.records import Record
from translator.lwm2m.registry import ResourceLookup

FORMAT = "SenML CBOR"


def decode(payload: bytes, base_path: Path, lookup: ResourceLookup | None, now: float | None) -> list[Record]:
    return resolve(_cbor.loads(payload, FORMAT), CBOR_LABELS, FORMAT, lookup, now)


def encode(records: Sequence[Record], base_path: Path | None, lookup: ResourceLookup | None) -> bytes:
    return _cbor.dumps(build(records, base_path, CBOR_LABELS, lookup, fmt=FORMAT, binary=True))
