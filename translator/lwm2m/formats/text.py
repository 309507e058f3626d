"""text/plain (CoAP Content-Format 0): one resource value as UTF-8 text.

Text is not self-describing: only the resource model says whether `1` is an Integer, a Float, a Boolean
or a String. Without a model the value stays a `str`.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Sequence
from datetime import datetime

from translator.lwm2m.errors import ErrorKind, Lwm2mFormatError
from translator.lwm2m.formats._single import single_record, single_value_path
from translator.lwm2m.formats._values import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    bad,
    check_finite,
    model_type,
    seconds_from_time,
    time_from_seconds,
    typed_for_encoding,
)
from translator.lwm2m.model import ResourceType
from translator.lwm2m.paths import Path
from translator.lwm2m.records import ObjLink, Record, Value
from translator.lwm2m.registry import ResourceLookup

FORMAT = "text/plain"
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")


def _parse(text: str, rtype: ResourceType | None, path: Path) -> Value:
    if rtype is None or rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
        return text
    if rtype is ResourceType.NONE:
        return text
    if rtype is ResourceType.INTEGER or rtype is ResourceType.UNSIGNED_INTEGER or rtype is ResourceType.TIME:
        if _INTEGER.fullmatch(text) is None:
            raise bad(path, text, rtype)
        number = int(text)
        if rtype is ResourceType.TIME:
            return time_from_seconds(number, path)
        low, high = (INT64_MIN, INT64_MAX) if rtype is ResourceType.INTEGER else (0, UINT64_MAX)
        if not low <= number <= high:
            raise bad(path, text, rtype)
        return number
    if rtype is ResourceType.FLOAT:
        if len(text) > 400 or _DECIMAL.fullmatch(text) is None:
            raise bad(path, text, rtype)
        real = float(text)
        if math.isinf(real):
            raise bad(path, text, rtype)
        return real
    if rtype is ResourceType.BOOLEAN:
        if text == "1":
            return True
        if text == "0":
            return False
        raise bad(path, text, rtype)
    if rtype is ResourceType.OBJLNK:
        return ObjLink.parse(text)
    # Opaque: LwM2M 1.1 text carries it base64-encoded.
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad(path, text, rtype) from None


def decode(payload: bytes, base_path: Path, lookup: ResourceLookup | None, now: float | None) -> list[Record]:
    path = single_value_path(base_path, lookup, FORMAT)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Lwm2mFormatError(f"{path}: text/plain payload is not UTF-8") from None
    return [Record(path, _parse(text, model_type(lookup, path), path))]


def format_value(value: Value, rtype: ResourceType, path: Path) -> str:
    if rtype is ResourceType.BOOLEAN:
        return "1" if value else "0"
    if isinstance(value, float):
        check_finite(value, path, FORMAT)
        return repr(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return str(seconds_from_time(value))
    return str(value)


def encode(records: Sequence[Record], base_path: Path | None, lookup: ResourceLookup | None) -> bytes:
    record = single_record(records, FORMAT)
    value, rtype = typed_for_encoding(record.value, model_type(lookup, record.path), record.path)
    try:
        return format_value(value, rtype, record.path).encode("utf-8")
    except UnicodeEncodeError:
        raise Lwm2mFormatError(
            f"{record.path}: string is not encodable as UTF-8", ErrorKind.BAD_REQUEST
        ) from None
