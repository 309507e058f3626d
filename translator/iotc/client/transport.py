"""The narrow MQTT client interface a device session needs, whatever implements it.

connect → publish (QoS 1 returns only after the PUBACK) → subscribe → messages through a callback → close.
Two implementations: `lean_transport.LeanTransport` (default) and `aiomqtt_transport.AiomqttTransport`.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from translator.iotc.protocol.errors import HubError

MessageHandler = Callable[[str, bytes], None]
AckCallback = Callable[["BaseException | None"], None]
"""Told the outcome of a QoS 1 publish: None once the PUBACK arrived, else why it never will."""


@dataclass(frozen=True, slots=True)
class ConnectParams:
    host: str  # where to connect (an address, or the hub's name)
    port: int
    client_id: str
    username: str
    password: str | None
    ssl_context: ssl.SSLContext
    server_hostname: str  # TLS server name to verify: the hub's (or DPS's) host name
    keep_alive: int = 300
    clean_session: bool = False
    connect_timeout: float = 30.0


class ConnectRefusedError(HubError):
    """The server answered CONNECT with a non-zero return code."""

    def __init__(self, return_code: int, message: str) -> None:
        super().__init__(f"CONNECT refused: {message} (return code {return_code})", status=return_code)
        self.return_code = return_code


class TransportClosedError(HubError):
    """The connection is gone; `reason` says why."""


class MqttTransport(Protocol):
    async def connect(self, params: ConnectParams) -> bool:
        """Open the connection; return the CONNACK session-present flag. Raise ConnectRefusedError,
        OSError, ssl.SSLError or TimeoutError."""
        ...

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Send; for QoS 1, return once the server's PUBACK arrived. Raise TransportClosedError."""
        ...

    def publish_nowait(self, topic: str, payload: bytes, on_ack: AckCallback) -> bool:
        """Send a QoS 1 publish now and call `on_ack` (from the event loop, not re-entrantly) with its
        outcome; False when it can't be sent right away (not connected, writes paused, or not supported),
        and `on_ack` will not be called. The hot path's way around a coroutine per message."""
        ...

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> tuple[int, ...]:
        """Subscribe; return the granted QoS per filter (0x80 = refused)."""
        ...

    async def close(self) -> None:
        """Send DISCONNECT when connected and close; idempotent."""
        ...

    @property
    def closed(self) -> Awaitable[str]:
        """Completes with the reason once the connection is lost or closed."""
        ...

    @property
    def is_connected(self) -> bool: ...


TransportFactory = Callable[[MessageHandler], MqttTransport]
