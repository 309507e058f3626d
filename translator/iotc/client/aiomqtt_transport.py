"""`MqttTransport` over aiomqtt (paho-mqtt): the idiomatic client, kept selectable for comparison.

Costs measured in ../shared/PERFORMANCE.md: a 1 s poll timer per client and 250–300 µs CPU per QoS 1 message.
Limitation: paho verifies the TLS certificate against the host it dials, so `server_hostname` must equal
`host` (true for a real hub; with the emulator, dial an address its certificate names, e.g. 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence

import aiomqtt

from translator.iotc.client.transport import (
    AckCallback,
    ConnectParams,
    ConnectRefusedError,
    MessageHandler,
    TransportClosedError,
)
from translator.ops.logs import device_log

log = logging.getLogger(__name__)


class AiomqttTransport:
    def __init__(self, on_message: MessageHandler) -> None:
        self._on_message = on_message
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[str] | None = None

    async def connect(self, params: ConnectParams) -> bool:
        self._closed = asyncio.get_running_loop().create_future()
        client = aiomqtt.Client(
            params.host,
            params.port,
            identifier=params.client_id,
            username=params.username,
            password=params.password,
            tls_context=params.ssl_context,
            keepalive=params.keep_alive,
            clean_session=params.clean_session,
            protocol=aiomqtt.ProtocolVersion.V311,
            timeout=params.connect_timeout,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttCodeError as error:
            code = int(error.rc) if isinstance(error.rc, int) else getattr(error.rc, "value", 0)
            self._finish(f"refused: {error}")
            raise ConnectRefusedError(code, str(error)) from error
        except aiomqtt.MqttError as error:
            self._finish(f"connect failed: {error}")
            raise TransportClosedError(str(error)) from error
        self._client = client
        reader = self._read(client, params.client_id)
        self._reader = asyncio.create_task(reader, name=f"aiomqtt-{params.client_id}")
        return False  # aiomqtt does not expose the session-present flag

    async def _read(self, client: aiomqtt.Client, device_id: str) -> None:
        try:
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                try:
                    self._on_message(str(message.topic), data)
                except Exception:
                    device_log(log, device_id).exception("message handler failed for %s", message.topic)
        except aiomqtt.MqttError as error:
            self._finish(f"connection lost: {error}")
        else:
            self._finish("connection closed")

    def _finish(self, reason: str) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(reason)

    def _require(self) -> aiomqtt.Client:
        if self._client is None or (self._closed is not None and self._closed.done()):
            raise TransportClosedError("not connected")
        return self._client

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        try:
            await self._require().publish(topic, payload, qos=qos)
        except aiomqtt.MqttError as error:
            self._finish(f"publish failed: {error}")
            raise TransportClosedError(str(error)) from error

    def publish_nowait(self, topic: str, payload: bytes, on_ack: AckCallback) -> bool:
        return False  # aiomqtt only publishes from a coroutine

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> tuple[int, ...]:
        try:
            granted = await self._require().subscribe([(topic, qos) for topic in filters])
        except aiomqtt.MqttError as error:
            self._finish(f"subscribe failed: {error}")
            raise TransportClosedError(str(error)) from error
        return tuple(code if isinstance(code, int) else int(code.value) for code in (granted or ()))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.__aexit__(None, None, None)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._finish("closed by us")

    @property
    def closed(self) -> Awaitable[str]:
        if self._closed is None:
            raise TransportClosedError("not connected")
        return self._closed

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._closed is not None and not self._closed.done()
