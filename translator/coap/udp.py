"""The CoAP socket as the datagram tap reads and writes it: datagrams read in batches into one buffer, the
error queue read only when the socket reports an error, answers sent from the address a request came to,
and the socket options that keep it readable under bursts and under uvloop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

# Datagrams read per readiness event: enough to empty the queue under load in few wake-ups, few enough
# that the TCP side (hub acknowledgements) is not starved.
DRAIN_BATCH = 64
UDP_MAX = 65_527  # the largest UDP payload (65,535 minus the UDP header)
ERRQUEUE_SIZE = 4096  # the error queue returns our own (small) datagrams
ANC_SIZE = 1024
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)

# What aiocoap expects with every datagram (it logs a warning per message without it); a datagram that did
# not come from this socket (decrypted, relayed) has no packet info of its own, and its answer goes back
# another way, which ignores it.
NO_PKTINFO = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, bytes(20))]

Received = Callable[[bytes, list[Any], int, Any], None]


class SocketErrors(Protocol):
    """Where the socket's errors go (aiocoap's udp6 message interface: it fails the exchanges they hit)."""

    def error_received(self, exc: OSError) -> None: ...

    def datagram_errqueue_received(
        self, data: bytes, ancdata: list[Any], flags: int, address: Any
    ) -> None: ...


def pktinfo_of(ancdata: list[Any]) -> bytes | None:
    """The IPV6_PKTINFO of a received datagram: the local address it came to."""
    for level, kind, value in ancdata:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
            return bytes(value)
    return None


def stop_error_queue(sock: socket.socket) -> None:
    # libuv (uvloop) stops polling a socket that reports POLLERR, which a queued ICMP error does while
    # IP_RECVERR is on: the CoAP socket would go deaf after the first unreachable device. Without it,
    # ICMP errors on this unconnected socket are not reported and a request to a gone device times
    # out instead of failing at once.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 0)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 0)
    log.info("event loop is not asyncio's: ICMP errors on the CoAP socket are not read")


def grow_receive_buffer(sock: socket.socket, size: int) -> None:
    # Bursts (a fleet waking at once, a GC pause) must wait in the kernel instead of being dropped and
    # retransmitted by the devices seconds later. Linux caps the size at net.core.rmem_max.
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError as exc:
        log.warning("cannot set the CoAP receive buffer to %d bytes: %s", size, exc)
        return
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports it doubled
    if granted < size:
        log.info(
            "CoAP receive buffer is %d bytes (asked %d; raise net.core.rmem_max for more)", granted, size
        )


def sendto(
    sock: socket.socket, data: bytes, peer: Any, local: bytes | None, errors: SocketErrors | None
) -> None:
    """Send a datagram, from the local address `local` (IPV6_PKTINFO) when given."""
    try:
        if local is None:
            sock.sendto(data, peer)
        else:  # answer from the address the request came to (a wildcard bind on a multi-homed host)
            sock.sendmsg((data,), [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, local)], 0, peer)
    except OSError as exc:  # e.g. ENOBUFS, or an unreachable peer reported on this send
        if errors is not None:
            errors.error_received(exc)


class DatagramReader:
    """Reads a socket's datagrams into one buffer: a datagram up to `recv_size` is read whole (a bigger one
    is cut by the kernel and flagged MSG_TRUNC) and only its own length is copied out.

    aiocoap's transport makes two recvmsg calls per readiness event (the error queue first, which almost
    always fails with EAGAIN, then one datagram): under load that is one event-loop wake-up, one exception
    and two system calls per datagram. `drain` reads up to DRAIN_BATCH datagrams per wake-up and the error
    queue only when the socket reports an error or woke up empty.
    """

    def __init__(self, recv_size: int = UDP_MAX) -> None:
        self.recv_size = recv_size
        self._buffer = bytearray(recv_size)
        self._view = memoryview(self._buffer)

    def drain(self, sock: socket.socket, received: Received, errors: SocketErrors | None) -> None:
        buffers = (self._buffer,)
        view = self._view
        for count in range(DRAIN_BATCH):
            try:
                size, ancdata, flags, address = sock.recvmsg_into(buffers, ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                if count == 0:
                    read_error_queue(sock, None, errors)  # woke up with nothing to read: an error is queued
                return
            except OSError as exc:  # an ICMP error on an earlier send (IP_RECVERR): find out whose
                read_error_queue(sock, exc, errors)
                return
            received(bytes(view[:size]), ancdata, flags, address)


def read_error_queue(sock: socket.socket, error: OSError | None, errors: SocketErrors | None) -> None:
    try:
        data, ancdata, flags, address = sock.recvmsg(ERRQUEUE_SIZE, ANC_SIZE, MSG_ERRQUEUE)
    except (BlockingIOError, InterruptedError):
        if error is not None and errors is not None:
            errors.error_received(error)
        return
    except OSError as exc:
        if exc.errno != errno.EAGAIN and errors is not None:
            errors.error_received(exc)
        return
    if errors is not None:
        errors.datagram_errqueue_received(data, ancdata, flags, address)
