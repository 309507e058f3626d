"""Value conversion between LwM2M records and JSON, both ways, with the model's type and range.

Uplink (`to_json`) never fails on a well-typed value; downlink (`from_json`) is where cloud input is
checked, and every refusal is a `ValueRejected` whose reason ends up in an acknowledgement or a
command response, so the reasons are written for the person who typed the value.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from translator.codec.errors import ValueRejected
from translator.lwm2m import Lwm2mFormatError, ObjLink, ResourceModel, ResourceType, Value

_INT_TYPES = (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER)
NUMERIC_TYPES = frozenset({ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.FLOAT})
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)


@dataclass(frozen=True, slots=True)
class Scaling:
    """`cloud = device * scale + offset`; the identity when both are defaults."""

    scale: float = 1.0
    offset: float = 0.0

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0


IDENTITY = Scaling()


# --- ranges ----------------------------------------------------------------------------------------

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_TERM = re.compile(rf"\s*({_NUMBER})\s*(?:\.\.\s*({_NUMBER}))?\s*(?:bytes?)?\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Range:
    """A DDF RangeEnumeration we understood: allowed intervals (a single value is a zero-width one)."""

    intervals: tuple[tuple[float, float], ...]
    text: str

    def __contains__(self, value: float) -> bool:
        return any(lo <= value <= hi for lo, hi in self.intervals)


def parse_range(resource: ResourceModel) -> Range | None:
    """The resource's range when it is a list of numbers and `a..b` intervals, else None (no check).

    For numbers a lone value (`255`) is too ambiguous to enforce (maximum? size in bytes?), so only lists
    with an interval or several values count. For String/Opaque the range bounds the length.
    """
    text = resource.range.strip()
    if not text:
        return None
    intervals: list[tuple[float, float]] = []
    for part in text.split(","):
        match = _TERM.fullmatch(part)
        if match is None:
            return None
        lo = float(match.group(1))
        hi = float(match.group(2)) if match.group(2) is not None else lo
        if math.isnan(lo) or math.isnan(hi) or hi < lo:
            return None
        intervals.append((lo, hi))
    lengths = resource.type in (ResourceType.STRING, ResourceType.OPAQUE)
    if not lengths and len(intervals) == 1 and ".." not in text:
        return None
    if resource.type not in NUMERIC_TYPES and not lengths:
        return None
    return Range(tuple(intervals), text)


# --- uplink ----------------------------------------------------------------------------------------


def to_json(value: Value, scaling: Scaling = IDENTITY) -> Any:
    """A record value as JSON: numbers scaled, bytes base64, times ISO 8601, links `3303:0`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity; IoT Central would reject the whole message
    if isinstance(value, int | float):
        if scaling.identity:
            return value
        return value * scaling.scale + scaling.offset
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, ObjLink):
        return str(value)
    return value


# --- downlink --------------------------------------------------------------------------------------


def from_json(value: Any, resource: ResourceModel, scaling: Scaling = IDENTITY) -> Value:
    """A cloud JSON value as the typed LwM2M value of `resource`, range-checked; `ValueRejected` if not."""
    kind = resource.type
    if value is None:
        raise ValueRejected(f"{resource.name}: a value is required")
    if kind in NUMERIC_TYPES:
        return _number(value, resource, scaling)
    if kind is ResourceType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueRejected(f"{resource.name}: expected true or false, got {_show(value)}")
        return value
    if kind in (ResourceType.STRING, ResourceType.CORELNK):
        if not isinstance(value, str):
            raise ValueRejected(f"{resource.name}: expected a string, got {_show(value)}")
        _check_length(len(value.encode("utf-8")), resource)
        return value
    if kind is ResourceType.OPAQUE:
        if not isinstance(value, str):
            raise ValueRejected(f"{resource.name}: expected base64 text, got {_show(value)}")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueRejected(f"{resource.name}: {_show(value)} is not base64") from None
        _check_length(len(raw), resource)
        return raw
    if kind is ResourceType.TIME:
        return _time(value, resource)
    if kind is ResourceType.OBJLNK:
        if not isinstance(value, str):
            raise ValueRejected(f'{resource.name}: expected an object link like "3303:0", got {_show(value)}')
        try:
            return ObjLink.parse(value)
        except Lwm2mFormatError as exc:
            raise ValueRejected(f"{resource.name}: {exc.reason}") from None
    raise ValueRejected(f"{resource.name}: a {kind.value} resource takes no value")


def _number(value: Any, resource: ResourceModel, scaling: Scaling) -> Value:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueRejected(f"{resource.name}: expected a number, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueRejected(f"{resource.name}: {value} is not a finite number")
    device: float | int = value if scaling.identity else (value - scaling.offset) / scaling.scale
    if resource.type in _INT_TYPES:
        if isinstance(device, float):
            if not device.is_integer():
                raise ValueRejected(f"{resource.name}: expected an integer, got {_show(value)}")
            device = int(device)
        lo, hi = _UINT64 if resource.type is ResourceType.UNSIGNED_INTEGER else _INT64
        if not lo <= device <= hi:
            raise ValueRejected(f"{resource.name}: {value} is out of range {lo}..{hi}")
    else:
        device = float(device)
    allowed = parse_range(resource)
    if allowed is not None and device not in allowed:
        raise ValueRejected(f"{resource.name}: {value} is out of range {allowed.text}")
    return device


def _time(value: Any, resource: ResourceModel) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueRejected(f"{resource.name}: {value} is not a time") from None
    if not isinstance(value, str):
        raise ValueRejected(f"{resource.name}: expected an ISO 8601 date and time, got {_show(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueRejected(f"{resource.name}: {_show(value)} is not an ISO 8601 date and time") from None
    # A time without a zone is taken as UTC, the only zone a device clock can be assumed to share.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _check_length(length: int, resource: ResourceModel) -> None:
    allowed = parse_range(resource)
    if allowed is not None and length not in allowed:
        raise ValueRejected(f"{resource.name}: length {length} is out of range {allowed.text}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- Execute arguments -----------------------------------------------------------------------------

# LwM2M Execute argument values: quoted text of these characters only (no space, quote or backslash).
_ARG_TEXT = re.compile(r"[\x21\x23-\x26\x28-\x5b\x5d-\x7e]*")


def execute_argument(digit: int, value: Any, label: str) -> str:
    """One `digit='value'` Execute argument; `True` alone (a flag) is just the digit."""
    if value is True:
        return str(digit)
    if isinstance(value, bool) or value is None:
        raise ValueRejected(f"{label}: expected text or a number, got {_show(value)}")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueRejected(f"{label}: {value} is not a finite number")
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueRejected(f"{label}: expected text or a number, got {_show(value)}")
    if _ARG_TEXT.fullmatch(text) is None:
        raise ValueRejected(f"{label}: Execute arguments cannot carry spaces, quotes or backslashes")
    return f"{digit}='{text}'" if text else str(digit)
