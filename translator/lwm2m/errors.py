"""The typed errors of the LwM2M core.

`Lwm2mFormatError` is the only exception a decoder or encoder lets out. It carries the reason and the
CoAP answer it suggests, so the CoAP layer maps it once instead of guessing from the message text.
`DdfError` is separate on purpose: a bad object definition is a start-up/configuration problem, not
something to answer a device with.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """The CoAP response a format error suggests (value: the dotted code)."""

    BAD_REQUEST = "4.00"
    NOT_ACCEPTABLE = "4.06"
    UNSUPPORTED_CONTENT_FORMAT = "4.15"

    @property
    def code_class(self) -> int:
        return int(self.value[0])

    @property
    def code_detail(self) -> int:
        return int(self.value[2:])

    @property
    def numeric(self) -> int:
        """The code as the single CoAP header byte (class << 5 | detail), e.g. 4.00 -> 128."""
        return self.code_class << 5 | self.code_detail


class Lwm2mFormatError(ValueError):
    """A payload, path or value that cannot be decoded or encoded."""

    def __init__(self, reason: str, kind: ErrorKind = ErrorKind.BAD_REQUEST) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind

    def __repr__(self) -> str:
        return f"Lwm2mFormatError({self.reason!r}, kind={self.kind.value})"


class UnrepresentableValue(Lwm2mFormatError):
    """A well-formed value that cannot go on: NaN, an infinity, or a time outside 1970..9999."""


class DdfError(ValueError):
    """An OMA DDF object definition that cannot be loaded."""

    def __init__(self, reason: str, source: str = "") -> None:
        super().__init__(f"{source}: {reason}" if source else reason)
        self.reason = reason
        self.source = source
