"""Shared helpers of the CoAP face tests: a recording sink, a raw UDP client, bounded waits."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from translator.coap import (
    BackPressure,
    Delivery,
    DeregisterReason,
    DeviceIdentity,
    Outcome,
    Registration,
    TelemetryRecord,
    TelemetrySource,
    wire,
)


class RecordingSink:
    """Records every event; `mode` decides what on_records returns."""

    def __init__(self) -> None:
        self.registered: list[Registration] = []
        self.updated: list[Registration] = []
        self.deregistered: list[tuple[Registration, DeregisterReason]] = []
        self.batches: list[tuple[DeviceIdentity, list[TelemetryRecord], TelemetrySource, bool]] = []
        # "none" (nothing to send), "future" (held until release), "backpressure", "broken" (answers None,
        # as a sink that forgot its promise would)
        self.mode = "none"
        self.held: list[asyncio.Future[Outcome]] = []

    def on_registered(self, registration: Registration) -> None:
        self.registered.append(registration)

    def on_updated(self, registration: Registration) -> None:
        self.updated.append(registration)

    def on_deregistered(self, registration: Registration, reason: DeregisterReason) -> None:
        self.deregistered.append((registration, reason))

    def on_records(
        self,
        device: DeviceIdentity,
        records: Sequence[TelemetryRecord],
        source: TelemetrySource,
        *,
        confirmable: bool,
    ) -> Delivery:
        if self.mode == "backpressure":
            raise BackPressure("outbox full", retry_after=7)
        self.batches.append((device, list(records), source, confirmable))
        if self.mode == "future":
            fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            self.held.append(fut)
            return fut
        if self.mode == "broken":
            return None  # type: ignore[return-value]
        return Outcome.NOTHING

    def records(self, source: TelemetrySource | None = None) -> list[TelemetryRecord]:
        return [r for _, recs, src, _ in self.batches if source in (None, src) for r in recs]


async def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class _Proto(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


class UdpClient:
    """A raw UDP peer: send hand-made datagrams, read what comes back."""

    def __init__(self, transport: asyncio.DatagramTransport, proto: _Proto) -> None:
        self.transport = transport
        self.proto = proto
        self.mid = 0x1000

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1", local_port: int = 0) -> UdpClient:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        transport, proto = await loop.create_datagram_endpoint(
            _Proto, remote_addr=(host, port), local_addr=(host, local_port), family=family
        )
        return cls(transport, proto)

    @property
    def port(self) -> int:
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes) -> None:
        self.transport.sendto(data)

    async def recv(self, timeout: float = 3.0) -> wire.Datagram:
        async with asyncio.timeout(timeout):
            data = await self.proto.queue.get()
        msg = wire.parse(data)
        assert msg is not None, data.hex()
        return msg

    async def nothing(self, timeout: float = 0.3) -> None:
        try:
            async with asyncio.timeout(timeout):
                data = await self.proto.queue.get()
        except TimeoutError:
            return
        raise AssertionError(f"unexpected datagram {data.hex()}")

    def next_mid(self) -> int:
        self.mid = (self.mid + 1) & 0xFFFF
        return self.mid

    async def request(
        self,
        code: int,
        path: Sequence[str],
        *,
        query: Sequence[str] = (),
        content_format: int | None = None,
        payload: bytes = b"",
        mtype: int = wire.CON,
        token: bytes = b"\x01\x02",
        timeout: float = 3.0,
    ) -> wire.Datagram:
        options = wire.path_options(path)
        if content_format is not None:
            options.append((wire.OPT_CONTENT_FORMAT, wire.uint(content_format)))
        options.extend((wire.OPT_URI_QUERY, q.encode()) for q in query)
        options.sort(key=lambda o: o[0])
        self.send(wire.encode(mtype, code, self.next_mid(), token, options, payload))
        return await self.recv(timeout)

    def close(self) -> None:
        self.transport.close()
