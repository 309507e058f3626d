"""No Redis round trip per telemetry message (issue 17 §5), counted on a real redis-server with
`INFO commandstats` while registered devices stream.

What is counted: every command any client sent to the server between two snapshots, minus the snapshots'
own INFO. The node's heartbeat is time-driven, not message-driven; its TTL here (60 s: a beat every 20 s)
keeps it out of the windows. The direct path — a message published while the session is up and the outbox
is empty, acknowledged on the hub's PUBACK — must cost no command at all, however many messages. The
outbox path (the session is down, or the message would wait for a pacer) costs its append, group-committed:
that is the KEPT guarantee (docs/cluster.md), and it is measured here too, not bounded to zero.

The pacers are off and the emulator's limits too: this is about Redis, not about the quota a device gets."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient, emulator_config
from tests.e2e.clients import CLIENT_12
from tests.e2e.cluster_nodes import arrived, reading
from tests.e2e.conftest import (
    STEP,
    eventually,
    log_position,
    restartable_settings,
    session_connected,
    simulated,
)
from tests.redis_server import RedisServer, needs_redis
from translator.coap.simulator import SimulatedDevice
from translator.serve import Translator

pytestmark = needs_redis

DEVICES = 4


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    async with Emulator(emulator_config(tmp_path / "emulator", limits=False)) as running:
        yield running


async def _commands(client: aioredis.Redis) -> Counter[str]:
    stats = await client.info("commandstats")
    counts = Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})
    counts["info"] = 0  # the snapshots themselves
    counts["xread"] = 0  # the relay's wait for its stream: one bounded block (0.5 s) at a time, per second
    return counts


async def _window(client: aioredis.Redis, work: Awaitable[None]) -> Counter[str]:
    """The commands Redis served while `work` ran."""
    before = await _commands(client)
    await work
    return +(await _commands(client) - before)


async def test_streaming_costs_no_redis_command_per_message(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with RedisServer(tmp_path / "redis") as server:
        settings = restartable_settings(emulator, tmp_path / "node")
        settings = replace(
            settings,
            store=replace(settings.store, redis_url=server.url, node_id="node-a", heartbeat_ttl=60.0),
            iotc=replace(settings.iotc, telemetry_rate=0.0, device_telemetry_rate=0.0),
        )
        node = Translator(settings)
        await node.start()
        client = aioredis.Redis.from_url(server.url)
        try:
            async with asyncio.timeout(6 * STEP), AsyncExitStack() as stack:
                names = [f"hot-{n}" for n in range(DEVICES)]
                devices = [await stack.enter_async_context(simulated(node, n, **CLIENT_12)) for n in names]
                for name in names:
                    await session_connected(node, name)
                assert node.bridge is not None
                bridge = node.bridge

                async def settled() -> bool:  # set-ups done, their journal writes too
                    return bridge.journal.pending == 0 and all(
                        bridge.lives[name].registration is not None for name in names
                    )

                await eventually(settled, what="the devices set up")
                start = await log_position(rest)
                acknowledged: set[tuple[str, float]] = set()
                counter = iter(range(1, 1_000_000))

                async def stream(per_device: int) -> None:
                    async def one(device: SimulatedDevice) -> None:
                        for _ in range(per_device):
                            value = float(next(counter))
                            if (await reading(device, value)).code == AioCode.CHANGED:
                                acknowledged.add((device.endpoint, value))

                    await asyncio.gather(*(one(device) for device in devices))

                # A first reading each, and the outbox of the set-up's own readings replayed and removed: what
                # follows a connect is not what a message costs.
                await stream(1)

                async def replayed() -> bool:
                    return all([await node.store.outbox_depth(name) == 0 for name in names])

                await eventually(replayed, what="the set-up's outbox rows replayed")
                few = await _window(client, stream(5))
                many = await _window(client, stream(50))
                # 20 then 200 messages on the direct path: no command either time (a read per message would
                # show 200 here).
                assert (sum(few.values()), sum(many.values())) == (0, 0), (few, many)
                assert len(acknowledged) == DEVICES * 56

                # The outbox path: the hub away, every message is kept (one append script each, pipelined).
                status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 30})
                assert status == 200
                kept = await _window(client, stream(10))
                assert len(acknowledged) == DEVICES * 66
                assert kept["evalsha"] == DEVICES * 10, kept
                await rest.request("POST", "/emulator/faults/clear")

                for name in names:
                    expected = {v for n, v in acknowledged if n == name}

                    async def all_there(name: str = name, expected: set[float] = expected) -> bool:
                        return expected <= await arrived(rest, name, start)

                    await eventually(all_there, what=f"{name}'s readings at the hub")
        finally:
            async with asyncio.timeout(STEP):
                await node.stop()
                await client.aclose()
