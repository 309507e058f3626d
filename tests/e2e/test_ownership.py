"""Two translators on one Redis (issue 17 §2): a Register claims the device for the node it reached; the node
that lost it is fenced off its consuming actions; at start a node replays the outbox of devices whose owner
is gone, and leaves alone those of a node that still beats."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.clients import CLIENT_12
from tests.e2e.cluster_nodes import node_settings
from tests.e2e.conftest import (
    STEP,
    eventually,
    session_connected,
    simulated,
    telemetry_matching,
)
from tests.redis_server import RedisServer, needs_redis
from translator.cluster.ownership import Owner, Trigger
from translator.cluster.redis_ownership import RedisOwnership
from translator.serve import Translator
from translator.store.factory import opened
from translator.store.redis_store import RedisStore

pytestmark = needs_redis


async def test_a_register_claims_the_device_and_fences_off_its_former_owner(
    emulator: Emulator, tmp_path: Path
) -> None:
    async with RedisServer(tmp_path / "redis") as server:
        client = aioredis.Redis.from_url(server.url)
        watcher = RedisOwnership(client, "watcher")
        a = Translator(node_settings(emulator, tmp_path / "a", server.url, "node-a"))
        b = Translator(node_settings(emulator, tmp_path / "b", server.url, "node-b"))
        await a.start()
        await b.start()
        try:
            assert a.bridge is not None and b.bridge is not None
            async with simulated(a, "own-1", **CLIENT_12) as device:
                await session_connected(a, device.endpoint)
                assert await watcher.owner("own-1") == Owner("node-a", 1)
                assert await a.bridge.still_mine("own-1")
            # The device's packets now reach b (a balancer moved it): its Register there claims it.
            async with simulated(b, "own-1", **CLIENT_12) as moved:
                await session_connected(b, moved.endpoint)
                assert await watcher.owner("own-1") == Owner("node-b", 2)
                assert await b.bridge.still_mine("own-1")
                assert not await a.bridge.still_mine("own-1")  # a's replay and commands stop here
        finally:
            async with asyncio.timeout(STEP):
                await b.stop()
                await a.stop()
                await client.aclose()


async def test_at_start_a_node_replays_orphans_and_leaves_a_live_nodes_outbox(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with RedisServer(tmp_path / "redis") as server:
        client = aioredis.Redis.from_url(server.url)
        dead, live = RedisOwnership(client, "dead-node"), RedisOwnership(client, "live-node")
        await live.start()
        try:
            await dead.claim("orphan-1", Trigger.REGISTRATION)  # never beat: as if it died long ago
            await live.claim("kept-1", Trigger.REGISTRATION)
            async with opened(RedisStore(server.url)) as store:
                await store.outbox_append("orphan-1", b'{"n": 1}', creation_time=1.0)
                await store.outbox_append("kept-1", b'{"n": 2}', creation_time=1.0)
            node = Translator(node_settings(emulator, tmp_path / "c", server.url, "node-c"))
            await node.start()
            try:
                await telemetry_matching(rest, "orphan-1", lambda event: event["body"] == {"n": 1})
                assert node.bridge is not None

                async def replayed() -> bool:
                    return await node.store.outbox_depth("orphan-1") == 0

                await eventually(replayed, what="the orphan's outbox replayed and removed")
                assert await live.owner("orphan-1") == Owner("node-c", 2)
                assert await live.owner("kept-1") == Owner("live-node", 1)
                assert await node.store.outbox_depth("kept-1") == 1  # the live node's to replay
                assert "kept-1" not in node.bridge.lives
            finally:
                async with asyncio.timeout(STEP):
                    await node.stop()
        finally:
            await live.stop()
            await client.aclose()


async def test_translators_on_one_application_share_its_quotas(emulator: Emulator, tmp_path: Path) -> None:
    """IoT Central's quotas (DPS registrations/min, hub connects/s, messages/s) are the application's: two
    translators pace at half of each, and a node that leaves gives its half back to the others."""
    async with RedisServer(tmp_path / "redis") as server:

        def node(name: str) -> Translator:
            settings = node_settings(emulator, tmp_path / name, server.url, name)
            return Translator(replace(settings, store=replace(settings.store, heartbeat_ttl=1.0)))

        a, b = node("quota-a"), node("quota-b")
        await a.start()
        try:
            assert a.pool is not None and a.pool.pacing.dps is not None
            whole = a.settings.iotc.dps_registrations_per_minute / 60
            assert a.pool.pacing.dps.configured == pytest.approx(whole)
            await b.start()
            try:
                assert b.pool is not None and b.pool.pacing.hub is not None
                assert b.pool.pacing.hub.configured == pytest.approx(a.settings.iotc.connect_rate / 2)
                dps = a.pool.pacing.dps

                async def shared_by(nodes: int) -> bool:
                    return bool(dps.configured == pytest.approx(whole / nodes))

                await eventually(lambda: shared_by(2), what="a's half")
            finally:
                async with asyncio.timeout(STEP):
                    await b.stop()
            await eventually(lambda: shared_by(1), what="a's whole quota again")
        finally:
            async with asyncio.timeout(STEP):
                await a.stop()
