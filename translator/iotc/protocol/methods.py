"""Direct methods (IoT Central commands): names, request decoding and response building.

A command on a component arrives as method `{component}*{command}`; a root command is just
`{command}`. The reply is `$iothub/methods/res/{status}/?$rid={rid}` with a JSON body. IoT Central
gives up after 30 s; a command that needs longer answers 202 now and reports a property later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from translator.iotc.protocol.errors import MethodNameError
from translator.iotc.protocol.topics import MethodRequest, MethodResponse

COMPONENT_SEPARATOR = "*"


class MethodStatus(IntEnum):
    """Statuses a command reply uses; each face error maps to one of these, once."""

    OK = 200
    ACCEPTED = 202
    BAD_REQUEST = 400
    NOT_FOUND = 404
    ERROR = 500
    UNAVAILABLE = 503
    TIMEOUT = 504


@dataclass(frozen=True, slots=True)
class MethodName:
    command: str
    component: str | None = None

    def __str__(self) -> str:
        return join_method_name(self.component, self.command)


def split_method_name(name: str) -> MethodName:
    """`comp*cmd` → (comp, cmd); `cmd` → (None, cmd)."""
    component, separator, command = name.partition(COMPONENT_SEPARATOR)
    if not separator:
        if not name:
            raise MethodNameError("empty method name")
        return MethodName(command=name)
    if not component or not command or COMPONENT_SEPARATOR in command:
        raise MethodNameError(f"malformed component command {name!r}")
    return MethodName(command=command, component=component)


def join_method_name(component: str | None, command: str) -> str:
    if not command or COMPONENT_SEPARATOR in command:
        raise MethodNameError(f"bad command name {command!r}")
    if component is None:
        return command
    if not component or COMPONENT_SEPARATOR in component:
        raise MethodNameError(f"bad component name {component!r}")
    return f"{component}{COMPONENT_SEPARATOR}{command}"


def decode_payload(payload: bytes) -> Any:
    """The request body as JSON; an empty body is null, a non-JSON body is kept as text."""
    if not payload.strip():
        return None
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        # IoT Central always sends JSON; other callers of the hub API may not. Hand over the text
        # and let the codec decide rather than failing the command here.
        return payload.decode("utf-8", errors="replace")


def encode_payload(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Invocation:
    """A decoded method request: who to answer (`rid`), which command, with what."""

    rid: str
    method: MethodName
    payload: Any

    @classmethod
    def from_message(cls, request: MethodRequest, payload: bytes) -> Invocation:
        return cls(rid=request.rid, method=split_method_name(request.name), payload=decode_payload(payload))

    def respond(self, status: int, payload: Any = None) -> tuple[str, bytes]:
        return method_response(self.rid, status, payload)


def method_response(rid: str, status: int, payload: Any = None) -> tuple[str, bytes]:
    """(topic, body) answering request `rid`."""
    if not 100 <= status <= 999:
        raise ValueError(f"method status {status} is not a 3-digit status")
    return MethodResponse(status=status, rid=rid).topic, encode_payload(payload)
