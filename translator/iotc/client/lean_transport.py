"""A lean MQTT 3.1.1 client transport for many concurrent device sessions.

Why not asyncio's own TLS: `asyncio.sslproto` allocates a 256 KiB read buffer per connection (Python
3.11–3.13), which alone would cost 25 GB for 100k sessions. Here TLS runs through `ssl.MemoryBIO` over a plain
TCP `BufferedProtocol` whose receive buffer is shared by every connection of a `ConnectionGroup` (data is
consumed synchronously, so one buffer suffices), and one periodic task does keep-alive for the whole group
instead of a timer per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Sequence
from typing import Any, cast

from translator.iotc.client.transport import (
    AckCallback,
    ConnectParams,
    ConnectRefusedError,
    MessageHandler,
    TransportClosedError,
)
from translator.iotc.protocol import mqtt_codec as codec
from translator.ops.logs import device_log

log = logging.getLogger(__name__)

READ_BUFFER_BYTES = 64 * 1024
TLS_READ_CHUNK = 16 * 1024


class ConnectionGroup:
    """What many lean connections share: one receive buffer and one keep-alive task. Close it on shutdown."""

    def __init__(self, tick: float = 5.0) -> None:
        self.read_buffer = memoryview(bytearray(READ_BUFFER_BYTES))
        self._tick = tick
        self._members: set[_LeanProtocol] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, member: _LeanProtocol) -> None:
        self._members.add(member)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt-keep-alive")

    def discard(self, member: _LeanProtocol) -> None:
        self._members.discard(member)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._members:
            await asyncio.sleep(self._tick)
            now = loop.time()
            for member in list(self._members):
                member.check_keep_alive(now)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def __len__(self) -> int:
        return len(self._members)


class _LeanProtocol(asyncio.BufferedProtocol):
    def __init__(self, group: ConnectionGroup, params: ConnectParams, on_message: MessageHandler) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._group = group
        self._params = params
        self._on_message = on_message
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = params.ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=params.server_hostname
        )
        self._decoder = codec.Decoder()
        self._transport: asyncio.Transport | None = None
        self._handshaken = False
        self.connack: asyncio.Future[codec.ConnAck] = loop.create_future()
        self.closed: asyncio.Future[str] = loop.create_future()
        # A PUBACK completes a future (publish) or calls a callback (publish_nowait: no task per message).
        self._acks: dict[int, asyncio.Future[None] | AckCallback] = {}
        self._subacks: dict[int, asyncio.Future[codec.SubAck]] = {}
        self._next_packet_id = 0
        self._writable = asyncio.Event()
        self._writable.set()
        self._last_sent = loop.time()
        self._last_received = loop.time()

    # -- asyncio callbacks ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's is not an asyncio.Transport subclass, so no isinstance check.
        self._transport = cast(asyncio.Transport, transport)
        self._group.add(self)
        self._handshake()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._group.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._incoming.write(self._group.read_buffer[:nbytes])
        self._last_received = self._loop.time()
        if not self._handshaken and not self._handshake():
            return
        tls = self._tls
        incoming = self._incoming
        try:
            while True:
                try:
                    chunk = tls.read(TLS_READ_CHUNK)
                except ssl.SSLWantReadError:
                    break
                if not chunk:
                    self._fail("TLS connection closed by the server")
                    return
                for packet in self._decoder.feed(chunk):
                    self._dispatch(packet)
                # Nothing left to decrypt: stop without the SSLWantReadError a further read would raise
                # (one exception per PUBACK was a measurable share of the publish cost).
                if not incoming.pending and not tls.pending():
                    break
        except (ssl.SSLError, codec.MqttProtocolError) as error:
            self._fail(f"protocol error: {error}")
            return
        self._flush()

    def eof_received(self) -> bool:
        self._fail("connection closed by the server")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc}" if exc else "connection closed")

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- TLS --------------------------------------------------------------------------------------

    def _handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except (ssl.SSLError, ssl.CertificateError) as error:
            self._flush()
            self._fail(f"TLS handshake failed: {error}", error)
            return False
        self._handshaken = True
        params = self._params
        self._send(
            codec.encode_connect(
                params.client_id,
                params.username,
                params.password,
                keep_alive=params.keep_alive,
                clean_session=params.clean_session,
            )
        )
        return True

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _send(self, packet: bytes) -> None:
        if self.closed.done():
            raise TransportClosedError(f"connection closed: {self.closed.result()}")
        try:
            self._tls.write(packet)
        except ssl.SSLError as error:
            self._fail(f"TLS write failed: {error}")
            raise TransportClosedError(str(error)) from error
        self._last_sent = self._loop.time()
        self._flush()

    # -- MQTT -------------------------------------------------------------------------------------

    def _dispatch(self, packet: codec.Incoming) -> None:
        if isinstance(packet, codec.PubAck):
            waiter = self._acks.pop(packet.packet_id, None)
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():
                    waiter.set_result(None)
            elif waiter is not None:
                _call_back(waiter, None)
        elif isinstance(packet, codec.Message):
            if packet.qos == 1 and packet.packet_id is not None:
                self._send(codec.encode_puback(packet.packet_id))
            try:
                self._on_message(packet.topic, packet.payload)
            except Exception:
                # The client id is the device id (DPS's registration id, the hub's device id).
                device = self._params.client_id
                device_log(log, device).exception("message handler failed for %s", packet.topic)
        elif isinstance(packet, codec.ConnAck):
            if not self.connack.done():
                self.connack.set_result(packet)
        elif isinstance(packet, codec.SubAck):
            suback_waiter = self._subacks.pop(packet.packet_id, None)
            if suback_waiter is not None and not suback_waiter.done():
                suback_waiter.set_result(packet)

    def packet_id(self) -> int:
        # Skip ids still waiting for an acknowledgement, so a slow PUBACK can't be matched to a new message.
        for _ in range(65535):
            self._next_packet_id = self._next_packet_id % 65535 + 1
            if self._next_packet_id not in self._acks and self._next_packet_id not in self._subacks:
                return self._next_packet_id
        raise TransportClosedError("no free packet id: 65535 messages in flight")

    async def publish(self, topic: bytes, payload: bytes, qos: int) -> None:
        if not self._writable.is_set():
            await self._writable.wait()
        if qos == 0:
            self._send(codec.encode_publish(topic, payload, 0, None))
            return
        packet_id = self.packet_id()
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._acks[packet_id] = waiter
        try:
            self._send(codec.encode_publish(topic, payload, 1, packet_id))
            await waiter
        finally:
            self._acks.pop(packet_id, None)

    def publish_nowait(self, topic: bytes, payload: bytes, on_ack: AckCallback) -> bool:
        if not self._writable.is_set() or not self.connack.done() or self.closed.done():
            return False
        packet_id = self.packet_id()
        try:
            self._send(codec.encode_publish(topic, payload, 1, packet_id))
        except TransportClosedError:
            return False
        self._acks[packet_id] = on_ack
        return True

    async def subscribe(self, filters: Sequence[str], qos: int) -> tuple[int, ...]:
        packet_id = self.packet_id()
        waiter: asyncio.Future[codec.SubAck] = self._loop.create_future()
        self._subacks[packet_id] = waiter
        try:
            self._send(codec.encode_subscribe(packet_id, [(f, qos) for f in filters]))
            suback = await waiter
        finally:
            self._subacks.pop(packet_id, None)
        return suback.return_codes

    def check_keep_alive(self, now: float) -> None:
        keep_alive = self._params.keep_alive
        if not keep_alive or not self.connack.done() or self.closed.done():
            return
        if now - self._last_received > keep_alive * 1.5:
            self._fail(f"no packet from the server for {keep_alive * 1.5:.0f} s")
        elif now - self._last_sent >= keep_alive * 0.75:
            with contextlib.suppress(TransportClosedError):
                self._send(codec.encode_pingreq())

    def disconnect(self) -> None:
        if self._transport is None or self.closed.done():
            return
        with contextlib.suppress(TransportClosedError, ssl.SSLError):
            self._send(codec.encode_disconnect())
        self._fail("closed by us")

    def _fail(self, reason: str, error: BaseException | None = None) -> None:
        if self.closed.done():
            return
        self.closed.set_result(reason)
        self._group.discard(self)
        failure = TransportClosedError(reason)
        if error is not None:
            failure.__cause__ = error
        acks = list(self._acks.values())
        self._acks.clear()
        for ack in acks:
            if isinstance(ack, asyncio.Future):
                _fail_waiter(ack, failure)
            else:
                self._loop.call_soon(_call_back, ack, failure)  # not from inside whatever failed
        for suback in self._subacks.values():
            _fail_waiter(suback, failure)
        _fail_waiter(self.connack, failure)
        self._acks.clear()
        self._subacks.clear()
        self._writable.set()
        if self._transport is not None:
            self._transport.close()


def _call_back(on_ack: AckCallback, outcome: BaseException | None) -> None:
    try:
        on_ack(outcome)
    except Exception:
        log.exception("publish acknowledgement callback failed")


def _fail_waiter(waiter: asyncio.Future[Any], failure: Exception) -> None:
    if not waiter.done():
        waiter.set_exception(failure)
        waiter.exception()  # nobody may be waiting any more: don't warn about an unretrieved exception


class LeanTransport:
    """`MqttTransport` over `_LeanProtocol`; cheap to create, one per connection attempt."""

    def __init__(self, on_message: MessageHandler, group: ConnectionGroup) -> None:
        self._on_message = on_message
        self._group = group
        self._protocol: _LeanProtocol | None = None
        self._topics: dict[str, bytes] = {}

    async def connect(self, params: ConnectParams) -> bool:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(params.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _LeanProtocol(self._group, params, self._on_message), params.host, params.port
                )
                self._protocol = protocol
                connack = await protocol.connack
        except TransportClosedError as error:
            if isinstance(error.__cause__, ssl.SSLError | ssl.CertificateError):
                raise error.__cause__ from None
            raise
        except BaseException:
            if self._protocol is not None:
                self._protocol.disconnect()
            raise
        if connack.return_code:
            protocol.disconnect()
            message = codec.CONNACK_MESSAGES.get(connack.return_code, "refused")
            raise ConnectRefusedError(connack.return_code, message)
        return connack.session_present

    def _require(self) -> _LeanProtocol:
        if self._protocol is None:
            raise TransportClosedError("not connected")
        return self._protocol

    def _encoded(self, topic: str) -> bytes:
        encoded = self._topics.get(topic)
        if encoded is None:
            encoded = topic.encode()
            if len(self._topics) < 64:  # a session publishes to a handful of topics; don't grow forever
                self._topics[topic] = encoded
        return encoded

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        await self._require().publish(self._encoded(topic), payload, qos)

    def publish_nowait(self, topic: str, payload: bytes, on_ack: AckCallback) -> bool:
        protocol = self._protocol
        return protocol is not None and protocol.publish_nowait(self._encoded(topic), payload, on_ack)

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> tuple[int, ...]:
        return await self._require().subscribe(filters, qos)

    async def close(self) -> None:
        if self._protocol is not None:
            self._protocol.disconnect()

    @property
    def closed(self) -> Awaitable[str]:
        return self._require().closed

    @property
    def is_connected(self) -> bool:
        protocol = self._protocol
        return protocol is not None and protocol.connack.done() and not protocol.closed.done()
