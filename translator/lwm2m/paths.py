"""LwM2M paths: `/`, `/o`, `/o/i`, `/o/i/r`, `/o/i/r/ri`.

A `Path` is a tuple of ints, so it is hashable, cheap, and orders the way a tree is walked:
a path sorts right before everything under it, and `/3/0/6` sorts before `/3/0/6/0` and `/3/0/7`.
"""

from __future__ import annotations

import enum
from typing import Self

from translator.lwm2m.errors import Lwm2mFormatError

MAX_ID = 65535
MAX_DEPTH = 4


class PathLevel(enum.IntEnum):
    ROOT = 0
    OBJECT = 1
    INSTANCE = 2
    RESOURCE = 3
    RESOURCE_INSTANCE = 4


def _segment(text: str, whole: str) -> int:
    # int() alone would accept " 5", "+5", "5_0" and non-ASCII digits.
    if not (text.isdigit() and text.isascii()) or len(text) > 5:
        raise Lwm2mFormatError(f"invalid path segment {text!r} in {whole!r}")
    value = int(text)
    if value > MAX_ID:
        raise Lwm2mFormatError(f"path segment {value} out of range 0..{MAX_ID} in {whole!r}")
    return value


class Path(tuple[int, ...]):
    """An LwM2M path; `Path()` is the root `/`."""

    __slots__ = ()

    def __new__(cls, *segments: int) -> Self:
        if len(segments) > MAX_DEPTH:
            raise Lwm2mFormatError(f"path {segments!r} is deeper than {MAX_DEPTH} segments")
        for seg in segments:
            if type(seg) is not int or not 0 <= seg <= MAX_ID:
                raise Lwm2mFormatError(f"path segment {seg!r} is not an integer in 0..{MAX_ID}")
        return tuple.__new__(cls, segments)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse `/3/0/1`; a single trailing slash is tolerated (`/3/0/`), `//` and empty text are not."""
        if not text.startswith("/"):
            raise Lwm2mFormatError(f"path {text!r} does not start with '/'")
        if text == "/":
            return tuple.__new__(cls, ())
        body = text[1:-1] if text.endswith("/") else text[1:]
        parts = body.split("/")
        if len(parts) > MAX_DEPTH:
            raise Lwm2mFormatError(f"path {text!r} is deeper than {MAX_DEPTH} segments")
        return tuple.__new__(cls, [_segment(p, text) for p in parts])

    @classmethod
    def of(cls, segments: tuple[int, ...]) -> Self:
        """Build from segments already known to be valid (decoders that range-checked them)."""
        return tuple.__new__(cls, segments)

    @property
    def level(self) -> PathLevel:
        return PathLevel(len(self))

    @property
    def object_id(self) -> int | None:
        return self[0] if len(self) > 0 else None

    @property
    def instance_id(self) -> int | None:
        return self[1] if len(self) > 1 else None

    @property
    def resource_id(self) -> int | None:
        return self[2] if len(self) > 2 else None

    @property
    def resource_instance_id(self) -> int | None:
        return self[3] if len(self) > 3 else None

    @property
    def is_root(self) -> bool:
        return len(self) == 0

    @property
    def parent(self) -> Path:
        if not self:
            raise Lwm2mFormatError("the root path has no parent")
        return Path.of(self[:-1])

    def child(self, segment: int) -> Path:
        return Path(*self, segment)

    def join(self, relative: tuple[int, ...]) -> Path:
        return Path(*self, *relative)

    def startswith(self, prefix: tuple[int, ...]) -> bool:
        """True when `prefix` is this path or one of its ancestors (the root is everyone's)."""
        return self[: len(prefix)] == prefix

    def is_prefix_of(self, other: tuple[int, ...]) -> bool:
        return other[: len(self)] == self

    def __str__(self) -> str:
        return "/" + "/".join(map(str, self)) if self else "/"

    def __repr__(self) -> str:
        return f"Path({str(self)!r})"


ROOT = Path()


def common_prefix(paths: list[Path]) -> Path:
    """The deepest path that is a prefix of all `paths` (the root for an empty list)."""
    if not paths:
        return ROOT
    first = min(paths)
    last = max(paths)
    n = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        n += 1
    return Path.of(first[:n])
