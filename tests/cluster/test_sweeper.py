"""The sweeper for expired owners (cluster/sweeper.py) on a real redis-server: two nodes sweeping the same
dead node at the same moment take each of its devices exactly once (the orphan claim's compare-and-set),
leave a live node's devices alone, hand what they took to `adopt`, and drop the dead node from the index
once its devices are gone. The sweep's waits are bounded and jittered."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.redis_server import RedisServer, needs_redis
from translator.cluster.ownership import HeartbeatPolicy, Owner, Trigger
from translator.cluster.redis_ownership import RedisOwnership
from translator.cluster.sweeper import OrphanSweeper, SweepPolicy

BOUND = 30  # seconds: a lost Redis answer fails the test with the await it hung on


def test_a_sweeps_waits_are_jittered_within_their_bound() -> None:
    policy = SweepPolicy(interval=10.0, jitter=0.5)
    rng = random.Random(7)
    waits = [policy.wait(rng) for _ in range(1000)]
    assert min(waits) >= 5.0 and max(waits) <= policy.longest_wait == 15.0
    assert max(waits) - min(waits) > 5.0  # spread: nodes do not sweep in step
    with pytest.raises(ValueError):
        SweepPolicy(interval=0.0)
    with pytest.raises(ValueError):
        SweepPolicy(interval=1.0, jitter=1.0)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    async with RedisServer(tmp_path / "redis") as server:
        # A blocking pool, as RedisStore's: two sweepers claim 64 devices at a time each, and redis-py's
        # default pool refuses a command beyond its connections instead of waiting for one.
        pool = aioredis.BlockingConnectionPool.from_url(
            server.url, max_connections=64, timeout=10, socket_timeout=10, socket_connect_timeout=10
        )
        connection = aioredis.Redis.from_pool(pool)
        yield connection
        await connection.aclose()


@needs_redis
async def test_two_sweepers_take_each_of_a_dead_nodes_devices_exactly_once(client: aioredis.Redis) -> None:
    async with asyncio.timeout(BOUND):
        dead = RedisOwnership(client, "dead", heartbeat=HeartbeatPolicy(ttl=0.2))
        live = RedisOwnership(client, "live")
        sweepers = [RedisOwnership(client, name) for name in ("s1", "s2")]
        for node in (dead, live, *sweepers):
            await node.start()
        try:
            orphans = [f"orphan-{n}" for n in range(200)]
            for device in orphans:
                assert await dead.claim(device, Trigger.REGISTRATION) == Owner("dead", 1)
            assert await live.claim("kept", Trigger.REGISTRATION) == Owner("live", 1)
            await dead.stop(leave=False)  # a crash: its heartbeat expires after its TTL

            async def expired() -> None:
                while await client.exists("iotct:node:dead"):
                    await asyncio.sleep(0.05)

            await expired()
            adopted: list[set[str]] = [set(), set()]

            def adopt_into(index: int) -> Callable[[set[str]], Awaitable[None]]:
                async def adopt(devices: set[str]) -> None:
                    adopted[index] |= devices

                return adopt

            sweeps = [OrphanSweeper(node, adopt_into(i)) for i, node in enumerate(sweepers)]
            taken = await asyncio.gather(*(sweep.sweep() for sweep in sweeps))

            assert taken[0] | taken[1] == set(orphans) and not taken[0] & taken[1]
            assert adopted == taken
            for device in orphans:
                owner = await live.owner(device)
                assert owner is not None and owner.node in ("s1", "s2") and owner.epoch == 2
            assert await live.owner("kept") == Owner("live", 1)  # a live node's device is left alone
            assert await dead.owned_by("dead") == set()
            listed = await client.smembers("iotct:owners")
            assert b"dead" not in listed and b"live" in listed  # the dead one forgotten, the live one kept
            # Nothing more to take: a second pass is a read of the index and the heartbeats only.
            assert await sweeps[0].sweep() == set()
        finally:
            for node in (live, *sweepers):
                await node.stop()


@needs_redis
async def test_a_node_that_left_gracefully_is_swept_at_once_and_a_beating_one_never(
    client: aioredis.Redis,
) -> None:
    async with asyncio.timeout(BOUND):
        leaving, beating, sweeper = (RedisOwnership(client, name) for name in ("leaving", "beating", "s"))
        for node in (leaving, beating, sweeper):
            await node.start()
        try:
            await leaving.claim("a", Trigger.REGISTRATION)
            await beating.claim("b", Trigger.REGISTRATION)
            await leaving.stop()  # a graceful leave deletes the heartbeat: no TTL to wait for
            taken: list[set[str]] = []

            async def adopt(devices: set[str]) -> None:
                taken.append(devices)

            assert await OrphanSweeper(sweeper, adopt).sweep() == {"a"}
            assert taken == [{"a"}]
            assert await sweeper.owner("b") == Owner("beating", 1)
            assert sweeper.held("a") == Owner("s", 2)  # held in memory: its outbox replay's fence holds
        finally:
            for node in (beating, sweeper):
                await node.stop()
