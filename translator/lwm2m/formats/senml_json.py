"""SenML JSON (CoAP Content-Format 110), as used by LwM2M 1.1+ (Read, Write, Send, composite)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from translator.lwm2m.errors import ErrorKind, Lwm2mFormatError
from translator.lwm2m.formats._senml import JSON_LABELS, build, resolve
from translator.lwm2m.paths import Path
from translator.lwm2m.records import Record
from translator.lwm2m.registry import ResourceLookup

FORMAT = "SenML JSON"


def _no_constants(name: str) -> object:
    raise Lwm2mFormatError(f"JSON constant {name} is not allowed")


def load_json(payload: bytes, fmt: str) -> object:
    """Strict JSON: UTF-8 only, no NaN/Infinity literals."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Lwm2mFormatError(f"{fmt}: payload is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except Lwm2mFormatError:
        raise
    except (ValueError, RecursionError) as exc:
        raise Lwm2mFormatError(f"{fmt}: invalid JSON ({exc})") from None


def dump_json(obj: object, fmt: str) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as exc:
        raise Lwm2mFormatError(f"{fmt}: {exc}", ErrorKind.NOT_ACCEPTABLE) from None


def decode(payload: bytes, base_path: Path, lookup: ResourceLookup | None, now: float | None) -> list[Record]:
    return resolve(load_json(payload, FORMAT), JSON_LABELS, FORMAT, lookup, now)


def encode(records: Sequence[Record], base_path: Path | None, lookup: ResourceLookup | None) -> bytes:
    return dump_json(build(records, base_path, JSON_LABELS, lookup, fmt=FORMAT, binary=False), FORMAT)
