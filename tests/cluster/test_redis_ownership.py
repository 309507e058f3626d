"""Ownership on a real redis-server: two nodes in one process contend for devices; claims are atomic
compare-and-sets with an epoch bump; an expired heartbeat lets another node take the devices; a node that
lost a device is fenced off its consuming actions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.redis_server import RedisServer, needs_redis
from translator.cluster.ownership import HeartbeatPolicy, Owner, Trigger
from translator.cluster.quota_share import QuotaShare
from translator.cluster.redis_ownership import RedisOwnership
from translator.iotc.client.pacer import FleetPacing, PacingSettings
from translator.store import RegistrationRecord
from translator.store.factory import opened
from translator.store.redis_store import RedisStore

pytestmark = needs_redis

BOUND = 30  # seconds: a lost Redis answer fails the test with the await it hung on, not CI at its limit


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with RedisServer(tmp_path / "redis") as running:
        yield running


@pytest.fixture
async def client(server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(server.url, socket_timeout=10, socket_connect_timeout=10)
    yield connection
    await connection.aclose()


async def test_nodes_contending_at_once_get_distinct_epochs_and_one_owner(client: aioredis.Redis) -> None:
    """Eight nodes see a Register for the same device at the same moment. Every claim that wins bumps the
    epoch by exactly one (a read-then-write instead of the script would hand two nodes the same epoch), and
    at the end exactly one node's fence holds: the stored owner's."""
    async with asyncio.timeout(BOUND):
        nodes = [RedisOwnership(client, f"node-{n}") for n in range(8)]
        for node in nodes:
            await node.start()
        try:
            outcomes = await asyncio.gather(*(node.claim("dev", Trigger.REGISTRATION) for node in nodes))
            wins = [
                o for node, o in zip(nodes, outcomes, strict=True) if o is not None and o.node == node.node
            ]
            owner = await nodes[0].owner("dev")
            assert owner is not None and wins
            assert sorted(w.epoch for w in wins) == list(range(1, owner.epoch + 1))  # distinct, none lost
            fences = [await node.still_mine("dev") for node in nodes]
            assert fences.count(True) == 1
            assert nodes[fences.index(True)].node == owner.node
        finally:
            for node in nodes:
                await node.stop()


async def test_a_claim_compares_and_sets_so_no_claim_is_lost_or_doubled(client: aioredis.Redis) -> None:
    """Alternating claims from two nodes, one at a time: each bumps the epoch by one; the loser learns it."""
    async with asyncio.timeout(BOUND):
        a, b = RedisOwnership(client, "node-a"), RedisOwnership(client, "node-b")
        assert await a.claim("dev", Trigger.REGISTRATION) == Owner("node-a", 1)
        assert await a.claim("dev", Trigger.REGISTRATION) == Owner("node-a", 1)  # an Update: no bump
        assert await b.claim("dev", Trigger.REGISTRATION) == Owner("node-b", 2)
        assert a.held("dev") == Owner("node-a", 1)  # a does not know yet…
        assert not await a.still_mine("dev")  # …until its next consuming action checks the fence
        assert a.held("dev") is None
        assert await a.claim("dev", Trigger.REGISTRATION) == Owner("node-a", 3)
        assert await a.owned_by("node-a") == {"dev"}
        assert await a.owned_by("node-b") == set()


async def test_an_expired_heartbeat_lets_another_node_take_the_devices(client: aioredis.Redis) -> None:
    async with asyncio.timeout(BOUND):
        a = RedisOwnership(client, "node-a", heartbeat=HeartbeatPolicy(ttl=1.0))
        b = RedisOwnership(client, "node-b", heartbeat=HeartbeatPolicy(ttl=1.0))
        await a.start()
        await b.start()
        try:
            assert await a.claim("dev", Trigger.REGISTRATION) == Owner("node-a", 1)
            # a beats: b's orphan claim leaves the device alone, however long it tries (a few TTLs).
            for _ in range(3):
                assert await b.claim("dev", Trigger.ORPHANED) is None
                await asyncio.sleep(0.5)  # time passing (past the TTL) is what is tested
            await a.stop(leave=False)  # a crash: the heartbeat key is left to expire
            async with asyncio.timeout(10):
                while await b.alive("node-a"):
                    await asyncio.sleep(0.05)  # Redis gives no event for an expiry we could await here
            assert await b.claim("dev", Trigger.ORPHANED) == Owner("node-b", 2)
            assert await b.owned_by("node-a") == set()
            assert await b.owned_by("node-b") == {"dev"}
        finally:
            await a.stop()
            await b.stop()


async def test_a_graceful_leave_hands_the_devices_over_at_once(client: aioredis.Redis) -> None:
    async with asyncio.timeout(BOUND):
        a = RedisOwnership(client, "node-a", heartbeat=HeartbeatPolicy(ttl=60))
        b = RedisOwnership(client, "node-b")
        await a.start()
        await a.claim("dev", Trigger.REGISTRATION)
        await a.stop()  # leave: the heartbeat goes now, not in 60 s
        assert await b.claim("dev", Trigger.ORPHANED) == Owner("node-b", 2)


async def test_a_registration_write_from_a_node_that_lost_the_device_is_refused(
    server: RedisServer, client: aioredis.Redis
) -> None:
    async with asyncio.timeout(BOUND):
        a, b = RedisOwnership(client, "node-a"), RedisOwnership(client, "node-b")
        await a.claim("dev", Trigger.REGISTRATION)
        assert await a.write_registration(RegistrationRecord("ep", "dev", {"by": "a"}, 1.0))
        await b.claim("dev", Trigger.REGISTRATION)
        # a still believes it holds the device (it checked nothing since): the script's fence refuses it.
        assert not await a.write_registration(RegistrationRecord("ep", "dev", {"by": "a, stale"}, 2.0))
        assert await b.write_registration(RegistrationRecord("ep", "dev", {"by": "b"}, 3.0))
        async with opened(RedisStore(server.url)) as store:
            [record] = await store.registrations()
            assert record.data == {"by": "b"}


async def test_a_stale_registration_expiring_on_the_former_owner_keeps_the_new_owners_record(
    server: RedisServer, client: aioredis.Redis
) -> None:
    """The journal writes through the ownership: when a moved device's old registration expires on the node
    that lost it, that node's delete must not remove the record the new owner wrote."""
    async with asyncio.timeout(BOUND):
        a, b = RedisOwnership(client, "node-a"), RedisOwnership(client, "node-b")
        await a.claim("dev", Trigger.REGISTRATION)
        assert await a.write_registrations([RegistrationRecord("ep", "dev", {"by": "a"}, 1.0)], []) == 0
        await b.claim("dev", Trigger.REGISTRATION)
        assert await b.write_registrations([RegistrationRecord("ep", "dev", {"by": "b"}, 2.0)], []) == 0
        assert await a.write_registrations([], ["ep"]) == 1  # a's registration of it expired: refused
        await a.claim("other", Trigger.REGISTRATION)
        await a.write_registrations([RegistrationRecord("ep-2", "other", {}, 1.0)], [])
        assert await a.write_registrations([], ["ep-2", "never-written"]) == 0  # its own: deleted
        async with opened(RedisStore(server.url)) as store:
            assert [(r.endpoint, r.data) for r in await store.registrations()] == [("ep", {"by": "b"})]


async def test_nodes_alive_counts_beating_nodes_only(client: aioredis.Redis) -> None:
    """The heartbeat registry the quota share reads: a node that leaves is gone at once, one that stops
    beating (a crash) once its heartbeat runs out."""
    async with asyncio.timeout(BOUND):
        policy = HeartbeatPolicy(ttl=1.0)
        nodes = [RedisOwnership(client, f"n-{n}", heartbeat=policy) for n in range(3)]
        for node in nodes:
            await node.start()
        assert await nodes[0].nodes_alive() == 3
        await nodes[1].stop()  # leaves gracefully
        assert await nodes[0].nodes_alive() == 2
        await nodes[2].stop(leave=False)  # crashes: its heartbeat runs out within the TTL
        while await nodes[0].nodes_alive() != 1:
            await asyncio.sleep(0.1)
        await nodes[0].stop()
        assert await RedisOwnership(client, "watcher").nodes_alive() == 0


async def test_the_quota_share_follows_the_live_nodes_and_never_exceeds_a_workers_share(
    client: aioredis.Redis,
) -> None:
    async with asyncio.timeout(BOUND):
        me, other = RedisOwnership(client, "q-me"), RedisOwnership(client, "q-other")
        await me.start()
        pacing = FleetPacing(PacingSettings(hub_connects_per_second=120))
        assert pacing.hub is not None
        alone = QuotaShare(me.nodes_alive, pacing, interval=60)
        assert await alone.refresh() == 1 and pacing.hub.configured == pytest.approx(120)
        await other.start()
        assert await alone.refresh() == 2 and pacing.hub.configured == pytest.approx(60)
        # One of three workers whose siblings have not started yet: a third, not the whole.
        worker = QuotaShare(me.nodes_alive, pacing, interval=60, at_least=3)
        assert await worker.refresh() == 3 and pacing.hub.configured == pytest.approx(40)
        await other.stop()
        assert await alone.refresh() == 1 and pacing.hub.configured == pytest.approx(120)
        await me.stop()
