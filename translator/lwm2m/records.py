"""The one record type every content format decodes to and encodes from."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Self

from translator.lwm2m.errors import Lwm2mFormatError
from translator.lwm2m.paths import MAX_ID, Path


class ObjLink(NamedTuple):
    """An object link value (`Objlnk`): points at `/object_id/instance_id`; text form `3303:0`."""

    object_id: int
    instance_id: int

    @classmethod
    def parse(cls, text: str) -> Self:
        left, sep, right = text.partition(":")
        if (
            not sep
            or not (left.isdigit() and left.isascii() and right.isdigit() and right.isascii())
            or len(left) > 5
            or len(right) > 5
        ):
            raise Lwm2mFormatError(f"invalid object link {text!r}")
        oid, iid = int(left), int(right)
        if oid > MAX_ID or iid > MAX_ID:
            raise Lwm2mFormatError(f"object link {text!r} out of range")
        return cls(oid, iid)

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"


# A resource value as Python sees it. Typing follows the object model when one is known:
# Integer/Unsigned Integer -> int, Float -> float, Boolean -> bool, String/Corelnk -> str,
# Opaque -> bytes, Time -> aware UTC datetime, Objlnk -> ObjLink.
Value = str | int | float | bool | bytes | ObjLink | datetime


class Record(NamedTuple):
    """One resource (or resource instance) value.

    `value` is None only for name-only records (a Read-Composite request, an LwM2M CBOR null).
    `time` is absolute Unix time in seconds when the payload carried one, else None.
    """

    path: Path
    value: Value | None
    time: float | None = None
