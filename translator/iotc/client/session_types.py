"""What a device session is configured with and reports: settings, endpoint, callbacks, state and metrics.

Kept apart from `session.py` (the asyncio shell) so the session's owner can describe one without the shell.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from translator.iotc.protocol.approval_wait import ApprovalPolicy
from translator.iotc.protocol.backoff import BackoffPolicy
from translator.iotc.protocol.dps import Assigned
from translator.iotc.protocol.errors import HubError
from translator.iotc.protocol.methods import Invocation
from translator.iotc.protocol.property_bag import PropertyBag
from translator.iotc.protocol.sas import TokenPolicy
from translator.iotc.protocol.twin import DesiredProperty
from translator.ops.logs import device_log

log = logging.getLogger("translator.iotc.client.session")

if TYPE_CHECKING:
    from translator.iotc.client.session import DeviceSession


class SessionState(enum.Enum):
    IDLE = "idle"
    PROVISIONING = "provisioning"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKING_OFF = "backing off"
    # DPS refuses the device (401/400209) until an operator approves or unblocks it in IoT Central.
    WAITING_APPROVAL = "waiting for approval"
    CLOSED = "closed"


class SessionClosedError(HubError):
    """The session was closed by its owner; nothing more can be sent through it."""


@dataclass(frozen=True, slots=True)
class SessionStatus:
    state: SessionState
    reason: str
    since: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class HubEndpoint:
    """How to reach assigned hubs: by default the hub's own name on 8883; `gateway_host` dials another
    address while still verifying the hub's name in TLS (like the SDK's gateway_hostname)."""

    gateway_host: str | None = None
    port: int = 8883
    ca_file: Path | None = None


Provisioner = Callable[[bool], Awaitable[Assigned]]
"""Returns the device's assignment; `True` means the cached one was refused: run DPS again."""

MethodHandler = Callable[[Invocation], Awaitable[tuple[int, Any]]]


@dataclass(slots=True)
class SessionCallbacks:
    on_desired: Callable[[list[DesiredProperty]], None] | None = None
    on_method: MethodHandler | None = None
    on_c2d: Callable[[PropertyBag, bytes], None] | None = None
    # After every (re)connect: the owner gets the twin and acknowledges what is pending.
    on_connected: Callable[[DeviceSession], Awaitable[None]] | None = None
    on_state: Callable[[DeviceSession, SessionStatus], None] | None = None
    # Asked before every reconnect (after the connection ended or an attempt failed, once the backoff
    # waited): None to reconnect, or why the session ends itself instead (state CLOSED, pending sends fail).
    # IoT Hub closes a device's connection when a newer one with the same identity arrives (error 400027),
    # and over MQTT 3.1.1 that close carries no reason, so the owner decides: on a shared store, another node
    # that took the device means this one must not connect again (it would close that node's connection).
    before_reconnect: Callable[[], Awaitable[str | None]] | None = None


@dataclass(slots=True)
class SessionMetrics:
    connects: int = 0
    disconnects: int = 0
    provisions: int = 0
    published: int = 0
    publish_failures: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def failed(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1


@dataclass(frozen=True, slots=True)
class SessionSettings:
    model_id: str | None = None
    keep_alive: int = 300
    token_policy: TokenPolicy = field(default_factory=TokenPolicy)
    max_in_flight: int = 16
    connect_timeout: float = 30.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)  # waits while not approved or blocked
    method_timeout: float = 30.0  # IoT Central gives up on a command after 30 s
    drain_timeout: float = 5.0  # how long a token renewal waits for in-flight publishes


async def released_by_owner(callbacks: SessionCallbacks, device_id: str) -> str | None:
    """Why the owner says not to reconnect (`SessionCallbacks.before_reconnect`), or None to reconnect. A
    check that fails cannot tell, and must not end the session for good: reconnect."""
    if callbacks.before_reconnect is None:
        return None
    try:
        return await callbacks.before_reconnect()
    except Exception:
        device_log(log, device_id).exception("session: the check before reconnecting failed")
        return None
