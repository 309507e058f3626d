"""The datagram tap in front of aiocoap: hot requests, notifications and our own raw exchanges.

aiocoap stays the protocol engine for registration and device management. This tap sits between the
socket and aiocoap's message layer (it wraps the udp6 interface's `datagram_msg_received`): every
datagram is parsed by the small hand parser in `wire.py`, and

* requests go to the server's hot handler first: it answers those for no resource (4.04) at once, and
  telemetry requests (CON/NON `POST /dp`, `POST /ingest`), which it answers
  with pre-encoded bytes and a compact dedup cache instead of aiocoap's per-request task, deep copies
  and 3 KB dedup entries;
* responses carrying a token of one of *our* exchanges (Observe and its cancellation, sent raw so the
  observation's token is ours from the first byte) or of an active observation are handled here;
* a notification for a token nobody knows is answered with RST, which stops the client sending it
  (a forgotten NON observation would otherwise flow forever);
* a message the server must refuse (a format error, a bad critical option, a datagram the kernel
  truncated) is answered or ignored here as `gate` decides, and never reaches aiocoap;
* every other request is checked against the dedup cache (aiocoap's own per-request cache is off, see
  `aiocoap_dedup`) and goes to aiocoap with the rest (registration, block-wise, management responses).

A datagram costs at most one rate-limited log line, whatever it holds. The socket's reads and writes
themselves (batches, the error queue, IPV6_PKTINFO) are in `udp.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from translator.coap import gate, wire
from translator.coap.dedup import DedupCache
from translator.coap.dtls.peers import is_virtual
from translator.coap.ratelog import LogBudget
from translator.coap.registration import Peer
from translator.coap.udp import (
    NO_PKTINFO,
    UDP_MAX,
    DatagramReader,
    grow_receive_buffer,
    pktinfo_of,
    sendto,
    stop_error_queue,
)

log = logging.getLogger(__name__)

ACK_TIMEOUT = 2.0
ACK_RANDOM_FACTOR = 1.5
MAX_RETRANSMIT = 4


def _host(address: Any) -> str:
    try:
        return f"{address[0]} port {address[1]}"
    except (TypeError, IndexError):
        return repr(address)[:80]


class ExchangeFailed(Exception):
    """A raw exchange ended without a response (RST, ICMP error, shutdown)."""


class HotHandler(Protocol):
    def hot_request(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None) -> bool:
        """Handle a CON/NON request the tap parsed; False to hand it to aiocoap."""
        ...

    def notification(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, observer: Any) -> None:
        """A response on an active observation's token (after the first)."""
        ...


class Forwarder(Protocol):
    """Datagrams of devices another node owns (translator/cluster: a cluster's relay between nodes)."""

    def inbound(self, msg: wire.Datagram, data: bytes, peer: Peer, *, known_here: bool) -> bool:
        """True when the datagram was taken: forwarded to the device's owner, or held while its address is
        looked up (it comes back through `relayed_received` if it is this node's after all)."""
        ...

    def outbound(self, data: bytes, peer: Peer) -> bool:
        """True when the datagram went to the device through the node its datagrams last came through."""
        ...

    def heard(self, peer: Peer) -> None:
        """A datagram from `peer` was read from this node's own socket."""
        ...


class SecureRoute(Protocol):
    def send(self, data: bytes, peer: Peer) -> bool:
        """Encrypt and send a CoAP message to a virtual (DTLS identity) address; False without a session."""
        ...


class _Detached:
    """The handler until `attach`, which is also when the tap starts reading datagrams."""

    def hot_request(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None) -> bool:
        return False

    def notification(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, observer: Any) -> None:
        return None


class _Exchange:
    __slots__ = ("acked", "attempt", "data", "future", "mid", "peer", "timeout", "timer", "token")

    def __init__(
        self, token: bytes, mid: int, peer: Peer, data: bytes, future: asyncio.Future[wire.Datagram]
    ):
        self.token = token
        self.mid = mid
        self.peer = peer
        self.data = data
        self.future = future
        self.attempt = 0
        self.acked = False
        self.timeout = ACK_TIMEOUT * random.uniform(1.0, ACK_RANDOM_FACTOR)
        self.timer: asyncio.TimerHandle | None = None


class DatagramTap:
    """Owns the hot path between the socket and aiocoap. Attach after the context started."""

    def __init__(
        self,
        *,
        next_mid: Callable[[], int] | None = None,
        dedup: DedupCache | None = None,
        clock: Callable[[], float] = time.monotonic,
        recv_size: int = UDP_MAX,
        entity_limit: int | None = None,
    ) -> None:
        self._handler: HotHandler = _Detached()
        self._dedup = dedup
        self._clock = clock
        self._reader = DatagramReader(recv_size)  # a bigger datagram is cut by the kernel, and refused
        self.recv_size = recv_size
        self._entity_limit = entity_limit or recv_size  # Size1 of the 4.13 for a truncated datagram
        self._log_budget = LogBudget(clock=clock)
        self._interface: Any = None
        self._sock: socket.socket | None = None
        self._slow: Callable[[bytes, list[Any], int, Any], None] | None = None
        self._pending: dict[bytes, _Exchange] = {}
        self._pending_mids: dict[int, _Exchange] = {}
        self._observers: dict[bytes, Any] = {}
        self._secure: SecureRoute | None = None
        self._forwarder: Forwarder | None = None
        self._token_prefix = bytes((0xA0 | (os.urandom(1)[0] & 0x0F),)) + os.urandom(3)
        self._token_counter = random.randrange(1 << 32)
        self._own_mid = random.randrange(1 << 16)
        self._next_mid = next_mid or self._own_next_mid
        self.counters: dict[str, int] = {
            "hot": 0,
            "slow": 0,
            "notifications": 0,
            "rst_unknown": 0,
            "refused": 0,
            "ignored": 0,
            "duplicates": 0,
            "failed": 0,
            "relayed": 0,
        }

    # --- wiring ------------------------------------------------------------------------------------

    def attach(self, interface: Any, handler: HotHandler, *, receive_buffer: int = 0) -> None:
        """Put the tap in front of an aiocoap udp6 message interface, handing requests and notifications to
        `handler`, and take over reading its socket (udp.DatagramReader: in batches, the error queue only
        when needed)."""
        self._interface = interface
        self._handler = handler
        self._slow = interface.datagram_msg_received
        interface.datagram_msg_received = self._received
        plain_send = interface.send

        def send(message: Any) -> None:  # aiocoap's answers to a DTLS device go back through its session
            secure = self._secure
            forwarder = self._forwarder
            peer = message.remote.sockaddr
            if secure is not None and is_virtual(peer):
                secure.send(message.encode(), peer)
            elif forwarder is None or not forwarder.outbound(message.encode(), peer):
                plain_send(message)

        interface.send = send
        sock = interface.transport.get_extra_info("socket")
        if receive_buffer:
            grow_receive_buffer(sock, receive_buffer)
        loop = asyncio.get_running_loop()
        if not isinstance(loop, asyncio.BaseEventLoop):
            stop_error_queue(sock)
        loop.remove_reader(sock.fileno())
        loop.add_reader(sock.fileno(), self._drain)
        self._sock = sock

    def _drain(self) -> None:
        sock = self._sock
        if sock is None:
            return
        # After close() datagrams go straight to aiocoap, which is shutting its exchanges down.
        received = self._received if self._interface is not None else self._slow
        if received is None:
            return
        self._reader.drain(sock, received, self._interface)

    def secure(self, route: SecureRoute | None) -> None:
        """Carry CoAP for DTLS devices too: decrypted datagrams come in through `secure_received`."""
        self._secure = route

    def secure_received(self, data: bytes, peer: Peer) -> None:
        """A CoAP message decrypted by a DTLS session; `peer` is its identity's virtual address."""
        if self._interface is not None:
            self._received(data, NO_PKTINFO, 0, peer)

    def forward(self, forwarder: Forwarder | None) -> None:
        """Relay datagrams of devices owned by another node (see `Forwarder`)."""
        self._forwarder = forwarder

    def relayed_received(self, data: bytes, peer: Peer) -> None:
        """A datagram from `peer` that another node's socket read (or this node's, held for a look-up):
        handled as if read here, without asking the forwarder again."""
        if self._interface is not None:
            self._received(data, NO_PKTINFO, 0, peer, relayed=True)

    def close(self) -> None:
        self._secure = None
        self._forwarder = None
        for ex in list(self._pending.values()):
            self._finish(ex, ExchangeFailed("server shutting down"))
        self._observers.clear()
        if self._interface is not None and self._slow is not None:
            with contextlib.suppress(AttributeError):
                del self._interface.datagram_msg_received
            with contextlib.suppress(AttributeError):
                del self._interface.send
        # The reader stays registered until aiocoap closes the socket (its close removes it).
        self._interface = None

    def send(self, data: bytes, peer: Peer, pktinfo: bytes | None = None) -> None:
        sock = self._sock
        if sock is None or self._interface is None:  # not attached yet, or closed
            return
        secure = self._secure
        if secure is not None and is_virtual(peer):
            secure.send(data, peer)
            return
        forwarder = self._forwarder
        if forwarder is not None and forwarder.outbound(data, peer):
            return
        sendto(sock, data, peer, pktinfo, self._interface)

    def send_here(self, data: bytes, peer: Peer) -> None:
        """Send from this node's socket whatever the forwarder would do (a datagram another node relayed
        for the device: sending it on through a relay again could loop)."""
        if self._sock is not None and self._interface is not None:
            sendto(self._sock, data, peer, None, self._interface)

    def _own_next_mid(self) -> int:
        self._own_mid = (self._own_mid + 1) & 0xFFFF
        return self._own_mid

    def new_token(self) -> bytes:
        self._token_counter = (self._token_counter + 1) & 0xFFFFFFFF
        return self._token_prefix + self._token_counter.to_bytes(4, "big")

    # --- observations ------------------------------------------------------------------------------

    def observe_token(self, token: bytes, observer: Any) -> None:
        self._observers[token] = observer

    def forget_token(self, token: bytes) -> None:
        self._observers.pop(token, None)

    # --- raw client exchanges ----------------------------------------------------------------------

    async def request(
        self,
        peer: Peer,
        code: int,
        options: Sequence[tuple[int, bytes]],
        payload: bytes = b"",
        *,
        token: bytes | None = None,
    ) -> wire.Datagram:
        """Send a CON request and wait for its response (unbounded here: the caller bounds it)."""
        token = token or self.new_token()
        mid = self._next_mid()
        data = wire.encode(wire.CON, code, mid, token, sorted(options, key=lambda o: o[0]), payload)
        future: asyncio.Future[wire.Datagram] = asyncio.get_running_loop().create_future()
        ex = _Exchange(token, mid, peer, data, future)
        old = self._pending.get(token)
        if old is not None:
            self._finish(old, ExchangeFailed("superseded"))
        self._pending[token] = ex
        self._pending_mids[mid] = ex
        self._transmit(ex)
        try:
            return await future
        finally:
            self._finish(ex, None)

    def _transmit(self, ex: _Exchange) -> None:
        self.send(ex.data, ex.peer)
        if ex.attempt < MAX_RETRANSMIT:
            ex.timer = asyncio.get_running_loop().call_later(ex.timeout, self._retransmit, ex)

    def _retransmit(self, ex: _Exchange) -> None:
        if ex.acked or ex.future.done():
            return
        ex.attempt += 1
        ex.timeout *= 2
        self._transmit(ex)

    def _finish(self, ex: _Exchange, error: BaseException | None) -> None:
        if ex.timer is not None:
            ex.timer.cancel()
            ex.timer = None
        if self._pending.get(ex.token) is ex:
            del self._pending[ex.token]
        if self._pending_mids.get(ex.mid) is ex:
            del self._pending_mids[ex.mid]
        if error is not None and not ex.future.done():
            ex.future.set_exception(error)

    # --- the datagram path -------------------------------------------------------------------------

    def _received(
        self, data: bytes, ancdata: list[Any], flags: int, address: Any, *, relayed: bool = False
    ) -> None:
        # Nothing may escape to the event loop: it would log a traceback per datagram, and under asyncio's
        # selector loop stop the tap's reader for good.
        try:
            self._route(data, ancdata, flags, address, relayed)
        except Exception as exc:
            self.counters["failed"] += 1
            held = self._log_budget.allow(type(exc).__name__)
            if held is not None:
                log.error(
                    "a datagram from %s failed: %s: %s (%d more since the last report)",
                    _host(address),
                    type(exc).__name__,
                    exc,
                    held,
                    exc_info=exc if held == 0 else None,
                )

    def _route(
        self, data: bytes, ancdata: list[Any], flags: int, address: Any, relayed: bool = False
    ) -> None:
        if flags & socket.MSG_TRUNC:
            self.counters["refused"] += 1
            answer = gate.truncated(data, self._entity_limit, self._next_mid)
            if answer is not None:
                self.send(answer, address, pktinfo_of(ancdata) if ancdata else None)
            return
        msg = wire.parse(data)
        if msg is None:  # no CoAP header: silently ignored (RFC 7252 §3)
            self.counters["ignored"] += 1
            return
        if msg.fault:
            self.counters["refused"] += 1
            answer = gate.refusal(msg, self._next_mid)
            if answer is not None:
                self.send(answer, address, pktinfo_of(ancdata) if ancdata else None)
            return
        forwarder = self._forwarder
        if forwarder is not None and not relayed:
            forwarder.heard(address)
            if forwarder.inbound(msg, data, address, known_here=self._knows(msg)):
                self.counters["relayed"] += 1
                return
        if not msg.special and self._dispatch(msg, address, ancdata):
            self.counters["hot"] += 1
            return
        dedup = self._dedup
        if dedup is not None and 0 < msg.code < 32 and self._interface is not None:
            cached = dedup.check(address, msg.mid, self._clock())
            if cached is not None:
                self.counters["duplicates"] += 1
                if cached and msg.mtype == wire.CON:
                    self.send(cached, address, pktinfo_of(ancdata) if ancdata else None)
                return
        self.counters["slow"] += 1
        if self._slow is not None:
            self._slow(data, ancdata, flags, address)

    def _knows(self, msg: wire.Datagram) -> bool:
        """Whether a response belongs to one of this tap's exchanges or observations."""
        if msg.code == 0:
            return msg.mid in self._pending_mids
        return msg.code >= 64 and (msg.token in self._pending or msg.token in self._observers)

    def _dispatch(self, msg: wire.Datagram, peer: Peer, ancdata: list[Any]) -> bool:
        code = msg.code
        if code < 32 and code:  # a request (in a CON or NON: the parser refused one in an ACK)
            return self._handler.hot_request(msg, peer, pktinfo_of(ancdata) if ancdata else None)
        if code == 0:
            if msg.mtype in {wire.ACK, wire.RST}:
                ex = self._pending_mids.get(msg.mid)
                if ex is None or ex.peer[:2] != peer[:2]:
                    return False
                if msg.mtype == wire.RST:
                    self._finish(ex, ExchangeFailed("device answered RST"))
                else:
                    ex.acked = True
                    if ex.timer is not None:
                        ex.timer.cancel()
                        ex.timer = None
                return True
            return False
        if code < 64:
            return False
        ex = self._pending.get(msg.token)
        if ex is not None and ex.peer != peer and (is_virtual(ex.peer) or is_virtual(peer)):
            ex = None  # a secured exchange is answered only through its session, and only by it
        if ex is not None and (msg.mtype != wire.ACK or msg.mid == ex.mid):
            if msg.mtype == wire.CON:
                self.send(wire.encode(wire.ACK, 0, msg.mid, b""), peer)
            if not ex.future.done():
                ex.future.set_result(msg)
            self._finish(ex, None)
            return True
        observer = self._observers.get(msg.token)
        if observer is not None:
            self.counters["notifications"] += 1
            self._handler.notification(msg, peer, pktinfo_of(ancdata) if ancdata else None, observer)
            return True
        if msg.observe is not None and msg.mtype != wire.ACK:
            # A notification for an observation nobody holds: reset it so the client stops.
            self.counters["rst_unknown"] += 1
            self.send(wire.encode(wire.RST, 0, msg.mid, b""), peer)
            return True
        return False
