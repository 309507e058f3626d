"""A DTLS-PSK client in front of a plain CoAP endpoint (the simulator's devices, tests, the benchmark).

The device keeps speaking plain CoAP to the relay's inside port; the relay holds one DTLS session to the
server on its outside port (same wrapper as the server, `openssl.ClientContext`). `rebind()` moves to a
new outside port with a new handshake, as a device behind a NAT whose mapping expired does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from translator.coap.dtls.openssl import ClientContext, Closed, Connection, Failure

log = logging.getLogger(__name__)

TICK = 0.2
MAX_QUEUED = 64  # datagrams the device sends before the handshake finished


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: DtlsRelay, inside: bool) -> None:
        self._relay = relay
        self._inside = inside

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._inside:
            self._relay._from_device(data, addr)
        else:
            self._relay._from_server(data)

    def error_received(self, exc: Exception) -> None:
        return None


class DtlsRelay:
    def __init__(self, server: tuple[str, int], context: ClientContext, host: str = "127.0.0.1") -> None:
        self.server = server
        self._host = host
        self._context = context
        self._inside: asyncio.DatagramTransport | None = None
        self._outside: asyncio.DatagramTransport | None = None
        self._conn: Connection | None = None
        self._device: Any = None
        self._queued: list[bytes] = []
        self._timer: asyncio.Task[None] | None = None
        self.opened = asyncio.Event()
        self.failed: str | None = None
        self.address: tuple[str, int] = (host, 0)  # where the device sends plain CoAP
        self.public_port = 0  # the source port the server sees
        self.handshakes = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self, True), local_addr=(self._host, 0)
        )
        self._inside = transport
        self.address = (self._host, int(transport.get_extra_info("sockname")[1]))
        await self._open_outside()
        self._timer = loop.create_task(self._tick(), name="dtls-client-timer")

    async def _open_outside(self) -> None:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Side(self, False), local_addr=(self._host, 0)
        )
        self._outside = transport
        self.public_port = int(transport.get_extra_info("sockname")[1])
        self.opened.clear()
        self.failed = None
        self._conn = self._context.connection()
        self._handshake()

    async def rebind(self) -> int:
        """A new outside port and a new handshake (the server keeps the registration: same identity)."""
        old, self._outside = self._outside, None
        if old is not None:
            old.close()
        await self._open_outside()
        return self.public_port

    def _flush(self) -> None:
        if self._conn is None or self._outside is None:
            return
        data = self._conn.outgoing()
        if data:
            self._outside.sendto(data, self.server)

    def _handshake(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            done = conn.handshake()
        except Failure as error:
            self.failed = str(error)
            self._flush()
            log.info("DTLS handshake with %s failed: %s", self.server, error)
            return
        self._flush()
        if done:
            self.handshakes += 1
            self.opened.set()
            queued, self._queued = self._queued, []
            for data in queued:
                conn.write(data)
            self._flush()

    def _from_device(self, data: bytes, addr: Any) -> None:
        self._device = addr
        if self._conn is None or self.failed is not None:
            return
        if not self.opened.is_set():
            if len(self._queued) < MAX_QUEUED:
                self._queued.append(data)
            return
        self._conn.write(data)
        self._flush()

    def _from_server(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            return
        conn.feed(data)
        if not self.opened.is_set():
            self._handshake()
            if not self.opened.is_set():
                return
        try:
            plaintexts = conn.read()
        except Closed:
            self._flush()
            self.opened.clear()
            self.failed = "closed by the server"
            return
        except Failure as error:
            self.failed = str(error)
            return
        self._flush()
        if self._inside is not None and self._device is not None:
            for plaintext in plaintexts:
                self._inside.sendto(plaintext, self._device)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            conn = self._conn
            if conn is None or self.opened.is_set() or self.failed is not None:
                continue
            left = conn.timeout()
            if left is not None and left <= 0:
                with contextlib.suppress(Failure):
                    conn.handle_timeout()
                self._flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._conn is not None and self.opened.is_set():
            self._conn.close()  # close_notify
            self._flush()
        for transport in (self._inside, self._outside):
            if transport is not None:
                transport.close()
        self._inside = self._outside = None
        self._conn = None
