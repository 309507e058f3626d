"""Two translators behind a real nginx UDP balancer on one real Redis (issue 17 §8): `serve` processes, so
`kill -9` is real. Devices (the simulator) register through the balancer, stream CON telemetry and answer
commands sent through the emulator's REST API.

- kill -9 one translator mid-stream: the balancer leaves the dead backend out (ICMP port unreachable, see
  tests/nginx_server.py), the dead node's devices' next datagrams reach the other node, which does not know
  their registration (4.04), so they register again there and are claimed (their owner's heartbeat is gone,
  or — a Register — their datagrams are here now). Every acknowledged message arrives, no device is connected
  twice, no DPS storm (the assignment is cached in Redis), commands reach the moved devices.
- Redis killed and started again on the same data: the translators reconnect to it, streaming goes on
  (the direct path needs no Redis) and nothing acknowledged is lost.

The devices send with a short CoAP ACK_TIMEOUT (0.25 s instead of 2 s): a client whose balancer session
pointed at the dead node loses three datagrams before the fourth goes to the live one, which at the RFC's
timing is 14–21 s; the figure for the default timing is given in docs/cluster.md."""

from __future__ import annotations

import asyncio
import signal
import time
from itertools import count
from pathlib import Path

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.cluster_nodes import arrived
from tests.e2e.conftest import eventually, log_position
from tests.e2e.nginx_cluster import (
    FAST,
    Streamer,
    cluster,
    command_answered,
)
from tests.nginx_server import needs_nginx
from tests.redis_server import needs_redis
from translator.coap.simulator import SimulatedDevice, SimulatorOptions

pytestmark = [needs_redis, needs_nginx]


FAST.ACK_TIMEOUT = 0.25


async def _connected(emulator: Emulator, names: list[str]) -> None:
    async def online() -> bool:
        return all(emulator.hub.online(name) for name in names)

    await eventually(online, what="every device connected to the hub")


async def _all_arrived(rest: RestClient, streamers: list[Streamer], start: int) -> None:
    for streamer in streamers:

        async def there(streamer: Streamer = streamer) -> bool:
            missing = streamer.acknowledged - await arrived(rest, streamer.name, start)
            assert not missing, f"{streamer.name}: {len(missing)} acknowledged readings not at the hub"
            return True

        await eventually(there, what=f"{streamer.name}'s acknowledged readings at the hub")


@pytest.mark.timeout(120)
async def test_kill_9_of_one_translator_rehomes_its_devices_and_loses_nothing_acknowledged(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with asyncio.timeout(90), cluster(emulator, tmp_path) as running:
        names = [s.name for s in running.streamers]
        await _connected(emulator, names)
        owners = await running.owners()
        victims = [name for name, node in owners.items() if node == "node-a"]
        survivors = [name for name, node in owners.items() if node == "node-b"]
        assert victims and survivors, owners
        start = await log_position(rest)
        stop = asyncio.Event()
        streams = [asyncio.ensure_future(s.run(stop)) for s in running.streamers]
        try:
            await command_answered(
                rest, victims[0]
            )  # commands reach devices on both nodes, through the balancer
            await command_answered(rest, survivors[0])
            before = {name: emulator.activity.of(name).view() for name in names}

            async def streaming() -> bool:
                return all(len(s.acknowledged) >= 4 for s in running.streamers)

            await eventually(streaming, what="every device streaming")
            killed_at = time.monotonic()
            assert await running.nodes["node-a"].stop(signal.SIGKILL) == -signal.SIGKILL

            moved = [s for s in running.streamers if s.name in victims]

            async def rehomed() -> bool:
                owners_now = await running.owners()
                return all(
                    owners_now[s.name] == "node-b" and s.last_ack > killed_at and emulator.hub.online(s.name)
                    for s in moved
                )

            await eventually(rehomed, timeout=40, interval=0.05, what="the killed node's devices re-homed")
            handover = max(s.last_ack for s in moved) - killed_at
            await command_answered(rest, victims[0])  # the moved device answers commands at its new node

            async def more() -> bool:
                return all(s.last_ack > time.monotonic() - 1 for s in running.streamers)

            await eventually(more, what="every device streaming after the hand-over")
        finally:
            stop.set()
            await asyncio.gather(*streams)

        await _all_arrived(rest, running.streamers, start)
        after = {name: emulator.activity.of(name).view() for name in names}
        for name in victims:  # A's connection died with A: one new connect at B, nobody taken over
            assert after[name]["hubConnects"] == before[name]["hubConnects"] + 1, (name, before, after)
            assert after[name]["takenOver"] == before[name]["takenOver"] == 0, (name, after)
        for name in survivors:  # untouched
            assert after[name] == before[name], (name, before, after)
        assert sum(a["dpsRegistrations"] for a in after.values()) == len(names)  # no DPS storm
        print(f"hand-over after kill -9: {handover:.2f} s for {len(moved)} devices (last one acknowledged)")


@pytest.mark.timeout(120)
async def test_a_redis_restart_loses_nothing_acknowledged_and_the_translators_reconnect(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with asyncio.timeout(90), cluster(emulator, tmp_path) as running:
        names = [s.name for s in running.streamers]
        await _connected(emulator, names)
        start = await log_position(rest)
        stop = asyncio.Event()
        streams = [asyncio.ensure_future(s.run(stop)) for s in running.streamers]
        try:

            async def acknowledged(at_least: int) -> bool:
                return all(len(s.acknowledged) >= at_least for s in running.streamers)

            await eventually(lambda: acknowledged(4), what="every device streaming")
            await running.redis.kill()
            during = {s.name: len(s.acknowledged) for s in running.streamers}
            await asyncio.sleep(1.0)  # the outage: streaming goes on (direct path)
            await running.redis.start()  # the same data, the same port

            async def more() -> bool:
                return all(len(s.acknowledged) >= during[s.name] + 4 for s in running.streamers)

            await eventually(more, what="streaming through and after the Redis restart")
        finally:
            stop.set()
            await asyncio.gather(*streams)

        # The translators talk to the restarted Redis: a new device registers (its claim is a script run),
        # and ownership written before the crash is still there (AOF, appendfsync always).
        await running.watcher.redis.connection_pool.disconnect()  # the test's own connections died with it
        owners = await running.owners()
        assert set(owners.values()) <= {"node-a", "node-b"} and all(owners.values()), owners
        newcomer = SimulatedDevice(
            "nginx-new", running.balancer.address, options=SimulatorOptions(version="1.2")
        )
        await newcomer.start()
        try:
            late = Streamer(newcomer, count(9_000_000))
            await late.register()
            owner = await eventually(lambda: running.watcher.owner("nginx-new"), what="the newcomer claimed")
            assert owner.node in ("node-a", "node-b")
            await _connected(emulator, ["nginx-new"])
        finally:
            await newcomer.close()
        await _all_arrived(rest, running.streamers, start)
