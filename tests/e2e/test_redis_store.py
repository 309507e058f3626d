"""`store.redis_url`: the translator keeps its state in a real redis-server. Devices register and their
telemetry flows; a translator started afresh elsewhere (another state directory, nothing on its disk)
restores every registration, observation and DPS assignment from Redis and carries on without a word to
the devices or to DPS."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.clients import CLIENT_12, TEMPERATURE, set_up_done, temperature_event
from tests.e2e.conftest import (
    STEP,
    eventually,
    log_position,
    restartable_settings,
    session_connected,
    simulated,
    telemetry_matching,
)
from tests.redis_server import RedisServer, needs_redis
from translator.cluster.ownership import Owner
from translator.serve import Translator
from translator.settings import Settings
from translator.store.redis_store import RedisStore

pytestmark = needs_redis


def _on_redis(settings: Settings, url: str, state: Path) -> Settings:
    return replace(settings, state_dir=state, store=replace(settings.store, redis_url=url))


async def test_a_fresh_translator_on_the_same_redis_restores_the_fleet(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with RedisServer(tmp_path / "redis") as server:
        settings = restartable_settings(emulator, tmp_path / "node-a")
        first = Translator(_on_redis(settings, server.url, tmp_path / "node-a"))
        await first.start()
        second: Translator | None = None
        try:
            assert isinstance(first.store, RedisStore)
            async with simulated(first, "redis-1", **CLIENT_12) as device:
                await session_connected(first, device.endpoint)
                await set_up_done(first, device)
                start = await log_position(rest)
                device.set_value(TEMPERATURE, 30.5)
                await telemetry_matching(rest, device.endpoint, temperature_event(30.5), after=start)
                asked = device.requests_received
                await first.stop()
                assert not (tmp_path / "node-a" / "translator.db").exists()  # nothing went to SQLite

                # Another instance: same port (the device's packets reach it), empty state directory.
                second = Translator(_on_redis(settings, server.url, tmp_path / "node-b"))
                await second.start()

                async def back() -> bool:
                    assert second is not None and second.bridge is not None
                    return second.bridge.health()[1]["devices"] == 1

                await eventually(back, what="the device's life resumed from Redis")
                start = await log_position(rest)
                device.set_value(TEMPERATURE, 31.5)  # a notification on the restored observation
                await telemetry_matching(rest, device.endpoint, temperature_event(31.5), after=start)
                assert (await device.update()).code == AioCode.CHANGED  # its registration id is known
                assert second.coap is not None and second.coap.registrations_total == 0
                assert second.pool is not None and second.pool.counters["dps_registrations"] == 0
                assert device.requests_received == asked  # no set-up downlink again
                # The first left (a graceful stop): the second took the device over at the next epoch.
                assert second.ownership is not None
                assert await second.ownership.owner(device.endpoint) == Owner(second.ownership.node, 2)
                assert second.bridge is not None and await second.bridge.still_mine(device.endpoint)
        finally:
            async with asyncio.timeout(STEP):
                if second is not None:
                    await second.stop()
                await first.stop()
