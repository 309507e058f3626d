"""The codec layer's exceptions: one hierarchy, each mapped once to its answer.

- `CodecFileError`: a codec file (or a codec built in code) is wrong. A start-up problem: the message
  names the file, the field and the reason so whoever wrote it can fix it without reading our code.
- `ValueRejected`: a value from IoT Central cannot become an LwM2M value (wrong type, out of range).
  Becomes a writable-property acknowledgement with ac 400, or a command answered 400.
- `CommandError`: a method call the codec cannot turn into an LwM2M operation; carries its status.
"""

from __future__ import annotations

from translator.iotc.protocol.methods import MethodStatus


class CodecError(Exception):
    """Base of every error raised by the codec layer."""


class CodecFileError(CodecError, ValueError):
    """A codec definition is invalid: `source` (file), `field` (where in it), `reason` (what is wrong),
    `line` (of the field in the file, when known: `codecs/x.toml:12: computed[0].expression: …`)."""

    def __init__(self, source: str, field: str, reason: str, line: int | None = None) -> None:
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {field}: {reason}")
        self.source = source
        self.field = field
        self.reason = reason
        self.line = line  # in the file, when the field could be found there


class ValueRejected(CodecError, ValueError):
    """A cloud value that does not fit the resource it is meant for."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CommandError(CodecError):
    """A method call that cannot become an LwM2M operation; `status` is the method status to answer."""

    def __init__(self, status: MethodStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UnknownCommand(CommandError):
    def __init__(self, reason: str) -> None:
        super().__init__(MethodStatus.NOT_FOUND, reason)


class BadCommandRequest(CommandError):
    def __init__(self, reason: str) -> None:
        super().__init__(MethodStatus.BAD_REQUEST, reason)
