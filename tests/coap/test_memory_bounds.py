"""Memory stays bounded under any input: floods against the real server over real sockets, counting what
the server and aiocoap keep afterwards."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from tests.coap.conftest import FAST
from tests.coap.support import RecordingSink, UdpClient, wait_until
from translator.coap import Lwm2mServer, wire
from translator.coap.errors import Code


def _aiocoap_request_cache(server: Lwm2mServer) -> int:
    """Entries in aiocoap's own per-request cache (its message manager's recent messages)."""
    message_manager: Any = server._context.request_interfaces[0].token_interface
    return len(message_manager._recent_messages)


def _block1(num: int, more: bool, szx: int = 6) -> bytes:
    return wire.uint((num << 4) | (int(more) << 3) | szx)


async def _flood(port: int, datagrams: list[bytes], sources: int) -> int:
    """Send every datagram from `sources` UDP ports (round robin); return how many requests were answered.
    A request counts once, by its source and token: on a busy machine the server may answer with an empty
    ACK first and the response separately, or repeat a separate response nobody acknowledged."""
    socks = []
    for _ in range(sources):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        socks.append(sock)
    answered: set[tuple[int, bytes]] = set()
    answers = 0

    def drain() -> None:
        nonlocal answers
        for index, sock in enumerate(socks):
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                answer = wire.parse(data)
                if answer is not None and answer.code != 0:  # not an empty ACK
                    answered.add((index, answer.token))
        answers = len(answered)

    loop = asyncio.get_running_loop()

    async def until_answered(sent: int, window: int) -> None:
        # at most `window` datagrams unanswered: a flood the socket buffers can hold, so none is lost (a
        # busy machine may take a while: sending on after a short deadline overflows the buffers instead)
        deadline = loop.time() + 60.0
        while answers < sent - window and loop.time() < deadline:
            await asyncio.sleep(0.002)
            drain()

    try:
        for i, data in enumerate(datagrams):
            socks[i % sources].sendto(data, ("127.0.0.1", port))
            if i % 50 == 49:
                await until_answered(i + 1, 100)
        await until_answered(len(datagrams), 0)
    finally:
        for sock in socks:
            sock.close()
    return answers


async def test_get_flood_leaves_nothing_behind(server: Lwm2mServer) -> None:
    # 150k of these took the translator from 117 to 508 MB: aiocoap kept every request and its 4.04 for
    # 247 s (~2.2 KB each). Now nothing is kept for a refused request.
    count = 4000
    datagrams = [
        wire.encode(wire.CON, Code.GET, i & 0xFFFF, i.to_bytes(2, "big"), wire.path_options(["nothing"]))
        for i in range(count)
    ]
    answers = await _flood(server.port, datagrams, sources=50)
    assert answers == count
    assert _aiocoap_request_cache(server) == 0
    stats = server.stats()
    assert stats["dedup_entries"] == 0 and stats["dedup_peers"] == 0, stats


async def test_remembered_answers_are_capped(sink: RecordingSink) -> None:
    # Answers that must be remembered for retransmissions (here: 2.01 of registrations) stay within the cap.
    async with Lwm2mServer(replace(FAST, dedup_max_entries=500), sink) as server:
        datagrams = [
            wire.encode(
                wire.CON,
                Code.POST,
                i,
                i.to_bytes(2, "big"),
                [(wire.OPT_URI_PATH, b"rd"), (wire.OPT_URI_QUERY, f"ep=flood{i}".encode())],
            )
            for i in range(1500)
        ]
        answers = await _flood(server.port, datagrams, sources=30)
        assert answers == 1500
        assert _aiocoap_request_cache(server) == 0
        assert server.stats()["dedup_entries"] <= 500


@pytest.fixture
async def client(server: Lwm2mServer) -> AsyncIterator[UdpClient]:
    peer = await UdpClient.connect(server.port)
    yield peer
    peer.close()


async def _block(client: UdpClient, num: int, more: bool, payload: bytes, path: str = "rd") -> wire.Datagram:
    options = sorted(
        [
            (wire.OPT_URI_PATH, path.encode()),
            (wire.OPT_URI_QUERY, b"ep=blocky"),
            (wire.OPT_BLOCK1, _block1(num, more)),
        ],
        key=lambda o: o[0],
    )
    client.send(wire.encode(wire.CON, Code.POST, client.next_mid(), b"\x0b", options, payload))
    return await client.recv()


async def test_block1_refused_as_soon_as_it_passes_max_payload(
    server: Lwm2mServer, client: UdpClient
) -> None:
    # FAST allows 2,048 bytes. Today every block got 2.31 Continue and the size was checked after the last.
    assert (await _block(client, 0, True, b"a" * 1024)).code == Code.CONTINUE
    assert (await _block(client, 1, True, b"b" * 1024)).code == Code.CONTINUE
    reply = await _block(client, 2, True, b"c" * 1024)
    assert reply.code == Code.REQUEST_ENTITY_TOO_LARGE
    assert server.stats()["block_transfers"] == 0
    # the transfer is gone: a block within the limit finds nothing to continue
    assert (await _block(client, 1, True, b"b" * 1024)).code == Code.REQUEST_ENTITY_INCOMPLETE


async def test_block1_announced_size1_too_large_is_refused_at_once(client: UdpClient) -> None:
    options = [
        (wire.OPT_URI_PATH, b"rd"),
        (wire.OPT_URI_QUERY, b"ep=blocky"),
        (wire.OPT_BLOCK1, _block1(0, True)),
        (wire.OPT_SIZE1, wire.uint(1_000_000)),
    ]
    client.send(wire.encode(wire.CON, Code.POST, client.next_mid(), b"\x0c", options, b"a" * 1024))
    assert (await client.recv()).code == Code.REQUEST_ENTITY_TOO_LARGE


async def test_block1_transfers_capped_and_aged(sink: RecordingSink) -> None:
    settings = replace(FAST, block_transfers=8, block_lifetime=0.5)
    async with Lwm2mServer(settings, sink) as server:
        peers = [await UdpClient.connect(server.port) for _ in range(20)]
        try:
            codes = [(await _block(peer, 0, True, b"a" * 1024)).code for peer in peers]
            assert codes.count(Code.CONTINUE) == 8
            assert codes.count(Code.SERVICE_UNAVAILABLE) == 12
            assert server.stats()["block_transfers"] == 8
            await wait_until(lambda: server.stats()["block_transfers"] == 0, timeout=3.0, what="expiry")
            assert (await _block(peers[0], 1, False, b"b")).code == Code.REQUEST_ENTITY_INCOMPLETE
            # room again: a whole transfer goes through
            assert (await _block(peers[1], 0, True, b"</3/0>," + b" " * 1017)).code == Code.CONTINUE
            reply = await _block(peers[1], 1, False, b"</3303/0>")
            assert reply.code == Code.CREATED, reply.payload
        finally:
            for peer in peers:
                peer.close()


async def test_registrations_capped_known_endpoints_still_welcome(sink: RecordingSink) -> None:
    async with Lwm2mServer(replace(FAST, max_registrations=3), sink) as server:
        peer = await UdpClient.connect(server.port)
        try:
            for n in range(3):
                reply = await peer.request(Code.POST, ["rd"], query=[f"ep=cap{n}"], payload=b"</3/0>")
                assert reply.code == Code.CREATED
            reply = await peer.request(Code.POST, ["rd"], query=["ep=cap9"], payload=b"</3/0>")
            assert (reply.code, reply.max_age) == (Code.SERVICE_UNAVAILABLE, 60)
            reply = await peer.request(Code.POST, ["rd"], query=["ep=cap1"], payload=b"</3/0>")
            assert reply.code == Code.CREATED
            assert len(server.store) == 3
        finally:
            peer.close()


async def test_duplicate_of_an_aiocoap_request_is_answered_from_the_cache(
    server: Lwm2mServer, client: UdpClient
) -> None:
    # aiocoap's own duplicate detection is off: the tap's cache must answer the retransmission instead.
    register = wire.encode(
        wire.CON, Code.POST, 0x6001, b"\x61", [(wire.OPT_URI_PATH, b"rd"), (wire.OPT_URI_QUERY, b"ep=dup")]
    )
    client.send(register)
    first = await client.recv()
    client.send(register)
    second = await client.recv()
    assert (first.code, first.mid) == (second.code, second.mid) == (Code.CREATED, 0x6001)
    assert server.registrations_total == 1
    assert server.stats()["duplicates"] == 1
