"""cbor2 behind a narrow, hostile-input-proof door.

cbor2 understands many semantic tags (regexes, MIME messages, fractions, shared references, ...) that
no LwM2M payload uses; they are refused before cbor2 builds them. Depth is bounded, duplicate map keys
are refused, and trailing bytes after the single data item are an error (cbor2.loads ignores them).
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import cbor2

from translator.lwm2m.errors import Lwm2mFormatError

# Enough for LwM2M CBOR (root map + 4 path levels) and SenML (array of maps); real payloads use <= 5.
MAX_DEPTH = 12

# Every semantic tag cbor2 decodes itself, except 1 (epoch time, allowed for Time) and 55799
# (self-described CBOR, a no-op marker).
_REFUSED_TAGS = (0, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 259, 260, 261, 1004, 43000)


def _refuse(value: object, immutable: bool) -> object:
    raise ValueError("CBOR semantic tag not accepted in LwM2M payloads")


_SEMANTIC: MappingProxyType[int, Callable[[Any, bool], Any]] = MappingProxyType(
    dict.fromkeys(_REFUSED_TAGS, _refuse)
)

# What cbor2 (or our hooks) may raise on hostile input; cbor2 wraps most of it in CBORDecodeError.
DECODE_ERRORS = (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError, LookupError)


def loads(payload: bytes, what: str) -> Any:
    """Decode exactly one CBOR data item."""
    fp = io.BytesIO(payload)
    try:
        value = cbor2.CBORDecoder(
            fp, semantic_decoders=_SEMANTIC, max_depth=MAX_DEPTH, allow_duplicate_keys=False
        ).decode()
    except DECODE_ERRORS as exc:
        raise Lwm2mFormatError(f"{what}: invalid CBOR ({exc})") from None
    if fp.tell() != len(payload):
        raise Lwm2mFormatError(f"{what}: {len(payload) - fp.tell()} bytes after the CBOR data item")
    return value


class Float32:
    """A float to be written as a CBOR single-precision float (what constrained clients use)."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


def _default(encoder: cbor2.CBOREncoder, obj: object) -> None:
    if isinstance(obj, Float32):
        encoder.write(b"\xfa" + struct.pack(">f", obj.value))
        return
    raise cbor2.CBOREncodeTypeError(f"cannot encode {type(obj).__name__}")


def fits_float32(value: float) -> bool:
    """True when `value` survives a round trip through IEEE single precision unchanged."""
    try:
        return struct.unpack(">f", struct.pack(">f", value))[0] == value or math.isnan(value)
    except OverflowError:
        return False


def compact_float(value: float) -> float | Float32:
    return Float32(value) if fits_float32(value) else value


def dumps(obj: object) -> bytes:
    return cbor2.dumps(obj, default=_default)
