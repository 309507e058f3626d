"""The relay on a real redis-server: entries between two nodes' streams, the seen-at index and its owner
look-up, loops that outlive a Redis restart, and a stop that leaves no task behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.redis_server import RedisServer, needs_redis
from translator.cluster.ownership import HeartbeatPolicy, Trigger
from translator.cluster.redis_ownership import RedisOwnership
from translator.cluster.redis_relay import RedisRelay
from translator.cluster.relay_policy import Direction, Foreign, Relayed, RelayPolicy

pytestmark = needs_redis

PEER = ("::ffff:127.0.0.1", 40001, 0, 0)
FAST = RelayPolicy(block=0.2, reconnect_min=0.02, reconnect_max=0.2)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with RedisServer(tmp_path / "redis") as running:
        yield running


@pytest.fixture
async def client(server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(server.url)
    yield connection
    await connection.aclose()


def _inbox() -> tuple[asyncio.Queue[Relayed], Callable[[Relayed], None]]:
    queue: asyncio.Queue[Relayed] = asyncio.Queue()
    return queue, queue.put_nowait


async def test_an_entry_posted_to_a_node_arrives_there_and_only_there(client: aioredis.Redis) -> None:
    inbox_a, to_a = _inbox()
    inbox_b, to_b = _inbox()
    a = RedisRelay(client, "node-a", policy=FAST, on_entry=to_a)
    b = RedisRelay(client, "node-b", policy=FAST, on_entry=to_b)
    await a.start()
    await b.start()
    try:
        async with asyncio.timeout(5):
            sent = [Relayed(Direction.TO_OWNER, "node-a", PEER, bytes([0x40, 2, 0, n])) for n in range(20)]
            for entry in sent:
                assert a.post("node-b", entry)
            got = [await inbox_b.get() for _ in sent]
            assert got == sent  # in order, whole
            reply = Relayed(Direction.TO_DEVICE, "node-b", PEER, b"\x60\x44\x00\x01")
            b.post("node-a", reply)
            assert await inbox_a.get() == reply
        assert inbox_a.empty() and inbox_b.empty()
        assert await client.pttl("iotct:relay:node-b") > 0  # a dead node's stream expires
    finally:
        await a.stop()
        await b.stop()


async def test_the_seen_at_index_names_the_device_and_its_live_owner(client: aioredis.Redis) -> None:
    owner = RedisOwnership(client, "node-a", heartbeat=HeartbeatPolicy(ttl=0.5))
    await owner.start()
    relay_b = RedisRelay(client, "node-b")
    relay_a = RedisRelay(client, "node-a")
    try:
        assert await relay_b.lookup(PEER) == Foreign(None, None)  # an address nobody registered from
        await relay_a.seen("dev-1", PEER, 300)
        assert await relay_b.lookup(PEER) == Foreign("dev-1", None)  # nobody owns it yet
        await owner.claim("dev-1", Trigger.REGISTRATION)
        assert await relay_b.lookup(PEER) == Foreign("dev-1", "node-a")
        assert await relay_a.lookup(PEER) == Foreign("dev-1", None)  # its own: handled where it is
        assert 3000 < await client.ttl("iotct:seen:" + '["::ffff:127.0.0.1",40001,0,0]') <= 3600
        await owner.stop(leave=True)  # the owner is gone: its device's datagrams are B's business now
        assert await relay_b.lookup(PEER) == Foreign("dev-1", None)
    finally:
        await owner.stop()


async def test_the_loops_outlive_a_redis_restart(server: RedisServer, client: aioredis.Redis) -> None:
    inbox, to_b = _inbox()
    a = RedisRelay(client, "node-a", policy=FAST)
    b = RedisRelay(client, "node-b", policy=FAST, on_entry=to_b)
    await a.start()
    await b.start()
    try:
        async with asyncio.timeout(20):
            a.post("node-b", Relayed(Direction.TO_OWNER, "node-a", PEER, b"before"))
            assert (await inbox.get()).data == b"before"
            await server.kill()
            while b.counters["read_failures"] == 0:  # the reader saw Redis go
                await asyncio.sleep(0.02)
            await server.start()
            # Entries posted while Redis comes back may be dropped (a datagram, CoAP retransmits); one
            # posted again and again gets through once both loops are back.
            while True:
                a.post("node-b", Relayed(Direction.TO_OWNER, "node-a", PEER, b"after"))
                try:
                    async with asyncio.timeout(0.5):
                        if (await inbox.get()).data == b"after":
                            break
                except TimeoutError:
                    continue
    finally:
        await a.stop()
        await b.stop()
    assert a._tasks == [] and b._tasks == []


async def test_stop_cancels_both_loops_and_a_full_queue_drops_the_newest(client: aioredis.Redis) -> None:
    relay = RedisRelay(client, "node-a", policy=RelayPolicy(queue=2))
    entry = Relayed(Direction.TO_DEVICE, "node-a", PEER, b"x")
    assert relay.post("node-b", entry) and relay.post("node-b", entry)
    assert not relay.post("node-b", entry)  # not started: nothing drains the queue
    assert relay.counters["dropped"] == 1
    await relay.start()
    tasks = list(relay._tasks)
    async with asyncio.timeout(5):
        await relay.stop()
    assert all(task.done() for task in tasks)
