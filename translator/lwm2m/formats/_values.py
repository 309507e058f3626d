"""Value typing shared by the formats: raw format values -> model-typed Python values and back."""

from __future__ import annotations

import math
import time as _time
from datetime import UTC, datetime, timedelta

from translator.lwm2m.errors import ErrorKind, Lwm2mFormatError
from translator.lwm2m.model import ResourceType
from translator.lwm2m.paths import Path
from translator.lwm2m.records import ObjLink, Value
from translator.lwm2m.registry import ResourceLookup

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
# SenML (RFC 8428 section 4.5.3): a resolved time below 2**28 is relative to "now".
RELATIVE_TIME_LIMIT = 2**28

_STRINGISH = (ResourceType.STRING, ResourceType.CORELNK)


def model_type(lookup: ResourceLookup | None, path: Path) -> ResourceType | None:
    if lookup is None or len(path) < 3:
        return None
    model = lookup.resource_model(path[0], path[2])
    return None if model is None else model.type


def model_multiple(lookup: ResourceLookup | None, path: Path) -> bool | None:
    if lookup is None or len(path) < 3:
        return None
    model = lookup.resource_model(path[0], path[2])
    return None if model is None else model.multiple


def bad(path: Path, value: object, rtype: ResourceType | str) -> Lwm2mFormatError:
    name = rtype.value if isinstance(rtype, ResourceType) else rtype
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return Lwm2mFormatError(f"{path}: {shown} is not a valid {name} value")


def time_from_seconds(seconds: float, path: Path) -> datetime:
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise bad(path, seconds, ResourceType.TIME)
    try:
        return EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise bad(path, seconds, ResourceType.TIME) from None


def seconds_from_time(value: datetime) -> int:
    """Whole seconds since the epoch (LwM2M Time is an integer); naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // timedelta(seconds=1)


def coerce(value: object, rtype: ResourceType | None, path: Path) -> Value:
    """Type a value decoded from a self-describing format (JSON, CBOR) by its resource model.

    Without a model the value is kept as the format gave it. Numbers are converted between int and float
    when nothing is lost (clients send `26` for a Float and `26.0` for an Integer); anything else that
    does not match the model is a bad request.
    """
    # bool first: it is an int to isinstance().
    if isinstance(value, bool):
        if rtype is None or rtype is ResourceType.BOOLEAN or rtype is ResourceType.NONE:
            return value
        raise bad(path, value, rtype)
    if rtype is None or rtype is ResourceType.NONE:
        # An executable resource has no value type either; keep whatever was sent.
        if isinstance(value, str | int | float | bytes | ObjLink | datetime):
            return value
        raise bad(path, value, "LwM2M")
    if rtype is ResourceType.FLOAT:
        if isinstance(value, float):
            return value
        if isinstance(value, int):
            try:
                return float(value)
            except OverflowError:
                raise bad(path, value, rtype) from None
        raise bad(path, value, rtype)
    if rtype in _STRINGISH:
        if isinstance(value, str):
            return value
        raise bad(path, value, rtype)
    if rtype is ResourceType.INTEGER or rtype is ResourceType.UNSIGNED_INTEGER:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int):
            low = INT64_MIN if rtype is ResourceType.INTEGER else 0
            high = INT64_MAX if rtype is ResourceType.INTEGER else UINT64_MAX
            if low <= value <= high:
                return value
        raise bad(path, value, rtype)
    if rtype is ResourceType.TIME:
        if isinstance(value, int | float):
            return time_from_seconds(value, path)
        if isinstance(value, datetime):
            return value
        raise bad(path, value, rtype)
    if rtype is ResourceType.OPAQUE:
        if isinstance(value, bytes):
            return value
        raise bad(path, value, rtype)
    if rtype is ResourceType.BOOLEAN:
        raise bad(path, value, rtype)
    # Objlnk
    if isinstance(value, ObjLink):
        return value
    if isinstance(value, str):
        return ObjLink.parse(value)
    raise bad(path, value, rtype)


def infer_type(value: Value) -> ResourceType:
    """The resource type a Python value stands for when no model is known."""
    t = type(value)
    if t is bool:
        return ResourceType.BOOLEAN
    if t is int:
        return ResourceType.INTEGER
    if t is float:
        return ResourceType.FLOAT
    if t is str:
        return ResourceType.STRING
    if t is bytes:
        return ResourceType.OPAQUE
    if t is ObjLink:
        return ResourceType.OBJLNK
    if isinstance(value, datetime):
        return ResourceType.TIME
    raise Lwm2mFormatError(f"cannot encode a value of type {t.__name__}", ErrorKind.BAD_REQUEST)


def typed_for_encoding(
    value: Value | None, rtype: ResourceType | None, path: Path
) -> tuple[Value, ResourceType]:
    """Check and convert a value about to be encoded; returns it with its effective type."""
    if value is None:
        raise Lwm2mFormatError(f"{path}: a record without a value cannot be encoded in this format")
    if rtype is None or rtype is ResourceType.NONE:
        rtype = infer_type(value)
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= UINT64_MAX:
            raise bad(path, value, rtype)
    else:
        value = coerce(value, rtype, path)
    if isinstance(value, ObjLink):
        check_objlnk(value, path)
    return value, rtype


def check_objlnk(value: ObjLink, path: Path) -> None:
    if not (0 <= value.object_id <= 65535 and 0 <= value.instance_id <= 65535):
        raise bad(path, value, ResourceType.OBJLNK)


def check_finite(value: float, path: Path, fmt: str) -> None:
    if not math.isfinite(value):
        raise Lwm2mFormatError(f"{path}: {value!r} cannot be represented in {fmt}", ErrorKind.NOT_ACCEPTABLE)


def resolve_time(seconds: float, now: float | None) -> float:
    """Absolute Unix time from a resolved SenML/LwM2M JSON time (values below 2**28 are relative)."""
    if seconds < RELATIVE_TIME_LIMIT:
        if now is None:
            now = _time.time()
        return now + seconds
    return seconds
