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
from translator.coap.udprelay import UdpRelay

log = logging.getLogger(__name__)

TICK = 0.2
MAX_QUEUED = 64  # datagrams the device sends before the handshake finished


class DtlsRelay(UdpRelay):
    def __init__(self, server: tuple[str, int], context: ClientContext, host: str = "127.0.0.1") -> None:
        super().__init__(server, host)
        self._context = context
        self._conn: Connection | None = None
        self._device: Any = None
        self._queued: list[bytes] = []
        self._timer: asyncio.Task[None] | None = None
        self.opened = asyncio.Event()
        self.failed: str | None = None
        self.handshakes = 0

    async def start(self) -> None:
        await super().start()
        self._timer = asyncio.get_running_loop().create_task(self._tick(), name="dtls-client-timer")

    def _outside_opened(self) -> None:
        """A new handshake on every new outside port (the server keeps the registration: same identity)."""
        self.opened.clear()
        self.failed = None
        self._conn = self._context.connection()
        self._handshake()

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

    def _from_server(self, data: bytes, addr: Any) -> None:
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
        super().close()
        self._conn = None
