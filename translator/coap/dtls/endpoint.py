"""The asyncio shell of the DTLS session table: a UDP socket on `coap.dtls_port`, a timer, PSK lookups.

Decrypted CoAP messages go to `deliver` (the datagram tap, from the identity's virtual address); the tap
sends to a virtual address through `send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable

from translator.coap.credentials import Credentials, PskCredential
from translator.coap.dtls.peers import is_virtual
from translator.coap.dtls.sessions import DtlsLimits, ServerCertificates, Session, SessionTable
from translator.coap.udp import DRAIN_BATCH, UDP_MAX

log = logging.getLogger(__name__)

TICK = 0.25  # DTLS retransmission timers start at 1 s (RFC 6347 §4.2.4.1)
LOOKUP_TIMEOUT = 5.0


def _socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    try:
        family = socket.AF_INET if ipaddress.ip_address(host).version == 4 else socket.AF_INET6
    except ValueError:
        family = socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::" serves IPv4 too
        if reuse_port:  # `serve --workers`: every worker binds the port; the kernel keeps a peer on one
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class DtlsEndpoint:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        credentials: Credentials,
        deliver: Callable[[bytes, tuple[str, int, int, int]], None],
        limits: DtlsLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        lookup_timeout: float = LOOKUP_TIMEOUT,
        receive_buffer: int = 0,
        certificates: ServerCertificates | None = None,
        reuse_port: bool = False,
    ) -> None:
        self._reuse_port = reuse_port
        self._receive_buffer = receive_buffer
        self._host = host
        self._port = port
        self._credentials = credentials
        self._lookup_timeout = lookup_timeout
        self.table = SessionTable(
            transmit=self._transmit,
            deliver=deliver,
            lookup=self._lookup,
            limits=limits,
            clock=clock,
            certificates=certificates,
        )
        self._sock: socket.socket | None = None
        self._timer: asyncio.Task[None] | None = None
        self._lookups: set[asyncio.Task[None]] = set()
        self.send_errors = 0

    async def start(self) -> None:
        self._sock = _socket(self._host, self._port, reuse_port=self._reuse_port)
        if self._receive_buffer:  # a burst of handshakes waits in the kernel (capped at rmem_max)
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._receive_buffer)
        loop = asyncio.get_running_loop()
        loop.add_reader(self._sock.fileno(), self._drain)
        self._timer = loop.create_task(self._tick(), name="dtls-timer")
        log.info("LwM2M over DTLS listening on %s port %d", self._host, self.port)

    async def stop(self) -> None:
        tasks = [task for task in (self._timer, *self._lookups) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timer = None
        self.table.close()  # close_notify to every peer, while the socket is still open
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("DTLS endpoint not started")
        return int(self._sock.getsockname()[1])

    # --- I/O ---------------------------------------------------------------------------------------

    def _drain(self) -> None:
        sock = self._sock
        if sock is None:
            return
        receive = self.table.receive
        for _ in range(DRAIN_BATCH):
            try:
                data, address = sock.recvfrom(UDP_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error of an earlier send
                continue
            try:
                receive(data, address)
            except Exception:  # nothing may escape to the loop: it would stop reading
                log.exception("a DTLS datagram from %s failed", address[:2])

    def _transmit(self, data: bytes, address: tuple[object, ...]) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.sendto(data, address)
        except OSError:
            self.send_errors += 1

    def send(self, data: bytes, peer: tuple[object, ...]) -> bool:
        """A CoAP message for a virtual peer (the tap's and aiocoap's sends end here)."""
        return is_virtual(peer) and self.table.send(data, peer)

    def endpoint_of(self, peer: tuple[object, ...]) -> str | None:
        return self.table.endpoint_of(peer)

    # --- time and lookups --------------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                self.table.tick()
            except Exception:
                log.exception("DTLS timer failed")

    def _lookup(self, session: Session, identity: str) -> None:
        task = asyncio.get_running_loop().create_task(self._resolve(session, identity), name="dtls-psk")
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _resolve(self, session: Session, identity: str) -> None:
        credential: PskCredential | None = None
        try:
            async with asyncio.timeout(self._lookup_timeout):
                credential = await self._credentials.psk(identity)
        except TimeoutError:
            log.warning("PSK lookup of identity %r timed out", identity[:64])
        except Exception:
            log.exception("PSK lookup of identity %r failed", identity[:64])
        if credential is None:
            log.info("DTLS handshake from %s: unknown PSK identity %r", session.address[:2], identity[:64])
        self.table.resolved(session, credential)
