"""gmqtt as a session transport, only for bench_sessions: the third candidate the MQTT client choice is
measured against (lean, aiomqtt, gmqtt). Install it with the benchmarks' extra: pip install -e '.[bench]'.

gmqtt has no awaitable PUBACK: its publish returns nothing and its handler drops the acknowledgement. So
this adapter takes the packet id from the connection's publish and resolves a future when the PUBACK
handler runs for it, by wrapping that handler on the instance (gmqtt looks handlers up by name on first
use). Private gmqtt API, pinned by the extra's version; fine for a measurement, not for serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Sequence
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv311

from translator.iotc.client.transport import (
    AckCallback,
    ConnectParams,
    ConnectRefusedError,
    MessageHandler,
    TransportClosedError,
)


class GmqttTransport:
    def __init__(self, on_message: MessageHandler) -> None:
        self._on_message = on_message
        self._client: Any = None
        self._closed: asyncio.Future[str] | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._subacks: dict[int, asyncio.Future[tuple[int, ...]]] = {}

    async def connect(self, params: ConnectParams) -> bool:
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        client = gmqtt.Client(params.client_id, clean_session=params.clean_session)
        client.set_config({"reconnect_retries": 0, "reconnect_delay": 0})  # the session reconnects
        client.set_auth_credentials(params.username, params.password)
        client.on_message = self._message
        client.on_subscribe = self._subscribed
        client.on_disconnect = lambda _client, _packet, exc=None: self._finish(f"disconnected: {exc}")
        handler = client._package_handler
        original = handler._handle_puback_packet

        def puback(cmd: int, packet: bytes) -> None:
            original(cmd, packet)
            waiter = self._acks.pop(struct.unpack("!H", packet[:2])[0], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

        handler._handle_puback_packet = puback
        try:
            async with asyncio.timeout(params.connect_timeout):
                # gmqtt dials and verifies one name: the hub's (localhost in the benchmark).
                await client.connect(
                    params.server_hostname,
                    params.port,
                    ssl=params.ssl_context,
                    keepalive=params.keep_alive,
                    version=MQTTv311,
                )
        except gmqtt.mqtt.handler.MQTTConnectError as error:
            self._finish(f"refused: {error}")
            raise ConnectRefusedError(getattr(error, "_code", 0), str(error)) from error
        self._client = client
        return False

    def _message(self, _client: Any, topic: str, payload: bytes, _qos: int, _properties: Any) -> int:
        self._on_message(topic, payload)
        return 0  # PUBACK reason: success

    def _subscribed(self, _client: Any, mid: int, granted: tuple[int, ...], _properties: Any) -> None:
        waiter = self._subacks.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(tuple(granted))

    def _finish(self, reason: str) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(reason)
        failure = TransportClosedError(reason)
        waiters: list[asyncio.Future[Any]] = [*self._acks.values(), *self._subacks.values()]
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(failure)
                waiter.exception()
        self._acks.clear()
        self._subacks.clear()

    def _require(self) -> Any:
        if self._client is None or not self.is_connected:
            raise TransportClosedError("not connected")
        return self._client

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        client = self._require()
        message = gmqtt.Message(topic, payload, qos=qos)
        mid, package = client._connection.publish(message)
        if qos == 0:
            return
        client._persistent_storage.push_message(mid, package)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[mid] = waiter
        await waiter

    def publish_nowait(self, topic: str, payload: bytes, on_ack: AckCallback) -> bool:
        return False  # measured on the coroutine path, as aiomqtt is

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> tuple[int, ...]:
        client = self._require()
        mid = client.subscribe([gmqtt.Subscription(topic, qos=qos) for topic in filters])
        waiter: asyncio.Future[tuple[int, ...]] = asyncio.get_running_loop().create_future()
        self._subacks[mid] = waiter
        return await waiter

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()
        self._finish("closed by us")

    @property
    def closed(self) -> Awaitable[str]:
        if self._closed is None:
            raise TransportClosedError("not connected")
        return self._closed

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._closed is not None and not self._closed.done()
