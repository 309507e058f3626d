"""No fighting over a device's hub connection (issue 17 §3), two translators on one real Redis and the
emulator: a device that moves to B (its Register reaches B) gets B's hub connection; the hub closes A's (IoT
Hub keeps one connection per identity, error 400027,
https://learn.microsoft.com/azure/iot-hub/troubleshoot-error-codes); A re-reads the owner before
reconnecting, finds B and lets the device go: no reconnect, no DPS. Before this, A reconnected after its
backoff, which closed B's connection, which reconnected...: 13 hub connects in 37 s for one device."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from emulator.app import Emulator
from tests.e2e.clients import CLIENT_12
from tests.e2e.conftest import STEP, eventually, restartable_settings, session_connected, simulated
from tests.redis_server import RedisServer, needs_redis
from translator.cluster.ownership import Owner
from translator.cluster.redis_ownership import RedisOwnership
from translator.serve import Translator
from translator.settings import Settings

pytestmark = needs_redis

WINDOW = 3.0  # seconds watched after the hand-over: the tests' backoff (0.2–2 s) would fight several times


def _node(emulator: Emulator, state: Path, url: str, node: str) -> Settings:
    settings = restartable_settings(emulator, state)
    return replace(settings, store=replace(settings.store, redis_url=url, node_id=node))


async def test_a_node_that_lost_the_device_lets_it_go_without_reconnecting(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="translator.cluster.handover")
    async with RedisServer(tmp_path / "redis") as server:
        client = aioredis.Redis.from_url(server.url)
        watcher = RedisOwnership(client, "watcher")
        a = Translator(_node(emulator, tmp_path / "a", server.url, "node-a"))
        b = Translator(_node(emulator, tmp_path / "b", server.url, "node-b"))
        await a.start()
        await b.start()
        try:
            async with asyncio.timeout(4 * STEP):
                assert a.bridge is not None and b.bridge is not None and a.pool is not None
                activity = emulator.activity.of("nofight-1")
                async with simulated(a, "nofight-1", **CLIENT_12) as device:
                    await session_connected(a, device.endpoint)
                    assert (activity.dps_registrations, activity.hub_connects) == (1, 1)
                    # The device's datagrams now reach B (a balancer moved it): its Register there.
                    async with simulated(b, "nofight-1", **CLIENT_12) as moved:
                        await session_connected(b, moved.endpoint)
                        assert await watcher.owner("nofight-1") == Owner("node-b", 2)

                        async def let_go() -> bool:
                            assert a.pool is not None and a.bridge is not None
                            return a.pool.get("nofight-1") is None and "nofight-1" not in a.bridge.lives

                        await eventually(let_go, what="A letting the device go")
                        watched = (activity.dps_registrations, activity.hub_connects, activity.taken_over)
                        await asyncio.sleep(WINDOW)  # watching for connects that must not come
                        assert (
                            (
                                activity.dps_registrations,
                                activity.hub_connects,
                                activity.taken_over,
                            )
                            == watched
                            == (1, 2, 1)
                        )  # B's connect (cached assignment), A's closed once
                        assert emulator.hub.online("nofight-1")
                        b_session = b.pool.get("nofight-1") if b.pool is not None else None
                        assert b_session is not None and b_session.is_connected
                        assert "nofight-1" in b.bridge.lives
            released = [r.getMessage() for r in caplog.records if "lets it go" in r.getMessage()]
            assert released == ["device nofight-1: owned by node node-b (epoch 2) now; this node lets it go "
                                "(no reconnect, no DPS)"]  # fmt: skip
        finally:
            async with asyncio.timeout(STEP):
                await b.stop()
                await a.stop()
                await client.aclose()


async def test_a_node_whose_connection_dropped_reconnects_while_the_device_is_its_own(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A network failure (here the emulator drops the connection) looks the same to the device as a
    take-over; the owner re-read keeps the device where nothing moved it."""
    async with RedisServer(tmp_path / "redis") as server:
        a = Translator(_node(emulator, tmp_path / "a", server.url, "node-a"))
        await a.start()
        try:
            async with asyncio.timeout(3 * STEP):
                async with simulated(a, "nofight-2", **CLIENT_12) as device:
                    await session_connected(a, device.endpoint)
                    activity = emulator.activity.of("nofight-2")
                    assert emulator.hub.disconnect("nofight-2", "dropped by fault injection")

                    async def reconnected() -> bool:
                        return activity.hub_connects == 2 and emulator.hub.online("nofight-2")

                    await eventually(reconnected, what="A reconnecting its own device")
                    assert a.bridge is not None and "nofight-2" in a.bridge.lives
                    assert activity.dps_registrations == 1
        finally:
            async with asyncio.timeout(STEP):
                await a.stop()
