"""The CoAP socket's reads and writes (coap/udp.py) on real sockets: batches, truncation, packet info."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from translator.coap.udp import DRAIN_BATCH, DatagramReader, pktinfo_of, read_error_queue, sendto


class Errors:
    def __init__(self) -> None:
        self.errors: list[OSError] = []
        self.queued: list[bytes] = []

    def error_received(self, exc: OSError) -> None:
        self.errors.append(exc)

    def datagram_errqueue_received(self, data: bytes, ancdata: list[Any], flags: int, address: Any) -> None:
        self.queued.append(data)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        server.bind(("::1", 0))
        server.setblocking(False)
        client.bind(("::1", 0))
        yield server, client
    finally:
        server.close()
        client.close()


def _wait_readable(sock: socket.socket) -> None:
    assert select.select([sock], [], [], 5.0)[0], "no datagram within 5 s"


def test_a_drain_reads_a_batch_whole_and_flags_what_the_buffer_cuts(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    sizes = [10, 300, 40]
    for size in sizes:
        client.sendto(b"x" * size, server.getsockname())
    _wait_readable(server)
    got: list[tuple[int, bytes | None, int]] = []
    DatagramReader(100).drain(
        server, lambda data, anc, flags, _peer: got.append((len(data), pktinfo_of(anc), flags)), Errors()
    )
    assert [size for size, _, _ in got] == [10, 100, 40]  # the 300-byte one cut to the buffer
    assert [bool(flags & socket.MSG_TRUNC) for _, _, flags in got] == [False, True, False]
    local = socket.inet_pton(socket.AF_INET6, "::1")
    assert all(info is not None and info[:16] == local for _, info, _ in got)  # the address it came to


def test_a_drain_stops_after_a_batch(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    for n in range(DRAIN_BATCH + 3):
        client.sendto(n.to_bytes(2, "big"), server.getsockname())
    _wait_readable(server)
    got: list[bytes] = []
    reader = DatagramReader(64)
    reader.drain(server, lambda data, *_: got.append(data), None)
    assert len(got) == DRAIN_BATCH  # the rest waits for the next readiness event
    reader.drain(server, lambda data, *_: got.append(data), None)
    assert [int.from_bytes(d, "big") for d in got] == list(range(DRAIN_BATCH + 3))


def test_an_answer_goes_from_the_address_the_request_came_to(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    client.sendto(b"ping", server.getsockname())
    _wait_readable(server)
    _, ancdata, _, peer = server.recvmsg(64, 1024)
    sendto(server, b"pong", peer, pktinfo_of(ancdata), Errors())
    client.settimeout(5.0)
    data, source = client.recvfrom(64)
    assert (data, source[:2]) == (b"pong", server.getsockname()[:2])


def test_an_error_with_nothing_queued_is_handed_on(pair: tuple[socket.socket, socket.socket]) -> None:
    server, _ = pair
    errors = Errors()
    refused = ConnectionRefusedError(111, "refused")
    read_error_queue(server, refused, errors)
    read_error_queue(server, None, errors)  # woke up empty, nothing queued: nothing to say
    assert (errors.errors, errors.queued) == ([refused], [])
