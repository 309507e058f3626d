"""Expired owners (issue 17 §2, cluster/sweeper.py): a translator killed with SIGKILL while it holds
acknowledged messages it could not publish (the hub away) leaves them in the shared outbox; the surviving
nodes find its heartbeat gone, exactly one of them takes each of its devices (orphan claim, epoch
compare-and-set) and replays their outbox — without the devices registering again. Before the sweeper those
messages waited until a node started, or until the devices registered again elsewhere."""

from __future__ import annotations

import asyncio
import functools
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.cluster_nodes import node_settings
from tests.e2e.conftest import STEP, eventually, free_udp_port, log_position
from tests.e2e.judge import hub_readings, judge
from tests.e2e.process import TranslatorProcess
from tests.e2e.rawdevice import RawDevice
from tests.redis_server import RedisServer, needs_redis
from translator.cluster.redis_ownership import RedisOwnership
from translator.cluster.sweeper import SweepPolicy
from translator.serve import Translator
from translator.settings import Settings

pytestmark = needs_redis

TTL = 2.0  # every node's heartbeat TTL, hence the sweep interval (1–3 s, jittered)
DEVICES = 3
KEPT = 5  # readings per device acknowledged while the hub is away: kept in the outbox


@pytest.mark.timeout(120)
async def test_the_survivors_replay_a_killed_nodes_outbox_and_exactly_one_takes_each_device(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with RedisServer(tmp_path / "redis") as server, asyncio.timeout(5 * STEP):
        client = aioredis.Redis.from_url(server.url)
        watcher = RedisOwnership(client, "watcher")
        dying = TranslatorProcess(emulator, tmp_path / "a" / "state", free_udp_port())
        dying.config.write_text(
            dying.config.read_text()
            + f'\n[store]\nredis_url = "{server.url}"\nnode_id = "node-a"\nheartbeat_ttl = {TTL}\n'
        )
        names = ("node-b", "node-c")
        survivors = [Translator(_survivor(emulator, tmp_path / name, server.url, name)) for name in names]
        await dying.start()
        for node in survivors:
            await node.start()
        devices = [RawDevice(f"sweep-{n}", dying.address) for n in range(DEVICES)]
        loop = asyncio.get_running_loop()
        try:
            start = await log_position(rest)
            for device in devices:
                await device.open()
                assert await device.register()
                assert await device.send(0, give_up=loop.time() + STEP)
            for device in devices:
                await eventually(
                    functools.partial(_arrived, rest, device.endpoint, start, {0}),
                    what=f"{device.endpoint}'s first reading at the hub",
                )
            status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
            assert status == 200
            for device in devices:
                for n in range(1, KEPT + 1):
                    assert await device.send(n, give_up=loop.time() + STEP)  # 2.04: kept in the outbox
            connects = {d.endpoint: emulator.activity.of(d.endpoint).hub_connects for d in devices}
            assert await dying.stop(signal.SIGKILL) == -signal.SIGKILL
            for device in devices:
                device.close()  # the devices say nothing more: nobody registers them again
            await rest.request("POST", "/emulator/faults/clear")
            killed = loop.time()

            for device in devices:
                await eventually(
                    functools.partial(_arrived, rest, device.endpoint, start, set(range(KEPT + 1))),
                    timeout=STEP,
                    what=f"{device.endpoint}'s kept readings at the hub",
                )
            replayed_after = loop.time() - killed
            # The bound: the heartbeat's expiry, one sweep wait at most, the connect and the replay.
            assert replayed_after < TTL + SweepPolicy(TTL).longest_wait + 10.0, replayed_after
            print(
                f"a killed node's kept readings at the hub {replayed_after:.2f} s after the kill, TTL {TTL} s"
            )
            for device in devices:
                owner = await watcher.owner(device.endpoint)
                assert owner is not None and owner.node in names, owner
                assert owner.epoch == 2, owner  # taken once: A's claim, then exactly one survivor's
                taker = survivors[names.index(owner.node)]
                other = survivors[1 - names.index(owner.node)]
                assert taker.bridge is not None and other.bridge is not None
                assert device.endpoint in taker.bridge.lives and device.endpoint not in other.bridge.lives
                activity = emulator.activity.of(device.endpoint)
                assert activity.hub_connects == connects[device.endpoint] + 1  # the taker's, once
                assert activity.taken_over == 0
                verdict = judge(list(range(KEPT + 1)), await hub_readings(rest, device.endpoint, start))
                assert verdict.lost == [] and verdict.duplicates == 0, verdict
            assert not await client.sismember("iotct:owners", "node-a")  # forgotten once its devices went
        finally:
            async with asyncio.timeout(STEP):
                for device in devices:
                    device.close()
                for node in survivors:
                    await node.stop()
                await dying.stop(signal.SIGKILL)
                await client.aclose()


def _survivor(emulator: Emulator, state: Path, url: str, node: str) -> Settings:
    settings = node_settings(emulator, state, url, node)
    return replace(settings, store=replace(settings.store, heartbeat_ttl=TTL))


async def _arrived(rest: RestClient, device_id: str, after: int, wanted: set[int]) -> bool:
    return wanted <= set(await hub_readings(rest, device_id, after))
