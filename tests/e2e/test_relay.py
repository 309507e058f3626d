"""Downlinks find the device (issue 17 §4): two translators on one Redis behind a balancer that moves a
device's flow from the node that owns it (A) to the other (B). B does not take the device on a Send or a
notification (only a Register/Update claims): it relays the datagrams to A, which handles them and answers
through B's socket; A's commands reach the device through B, and the device's answers come back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import redis.asyncio as aioredis

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.clients import CLIENT_12, REBOOT, TEMPERATURE
from tests.e2e.cluster_nodes import node_settings
from tests.e2e.conftest import STEP, eventually, send_at, session_connected, telemetry_matching
from tests.e2e.udp_balancer import UdpBalancer
from tests.redis_server import RedisServer, needs_redis
from translator.cluster.ownership import Owner
from translator.cluster.redis_ownership import RedisOwnership
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.serve import Translator

pytestmark = needs_redis

A, B = 0, 1

Pair = tuple[Translator, Translator, UdpBalancer, SimulatedDevice, aioredis.Redis, RedisOwnership]


@contextlib.asynccontextmanager
async def relayed_pair(emulator: Emulator, tmp_path: Path, endpoint: str) -> AsyncIterator[Pair]:
    """Nodes A and B on one Redis behind the LVS-like balancer (on A first), and a device started behind
    it; everything stopped, each step bounded, however the test ends."""
    async with RedisServer(tmp_path / "redis") as server:
        client = aioredis.Redis.from_url(server.url)
        a = Translator(node_settings(emulator, tmp_path / "a", server.url, "node-a"))
        b = Translator(node_settings(emulator, tmp_path / "b", server.url, "node-b"))
        await a.start()
        await b.start()
        assert a.coap is not None and b.coap is not None and a.bridge is not None and b.bridge is not None
        balancer = UdpBalancer([("127.0.0.1", a.coap.port), ("127.0.0.1", b.coap.port)])
        await balancer.start()
        device = SimulatedDevice(endpoint, balancer.address, options=replace(SimulatorOptions(), **CLIENT_12))
        await device.start()
        try:
            yield a, b, balancer, device, client, RedisOwnership(client, "watcher")
        finally:
            async with asyncio.timeout(STEP):
                await device.close()
                balancer.close()
                await b.stop()
                await a.stop()
                await client.aclose()


async def test_a_device_whose_datagrams_move_to_another_node_is_served_through_it(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with asyncio.timeout(6 * STEP), relayed_pair(emulator, tmp_path, "relay-1") as pair:
        a, b, balancer, device, client, watcher = pair
        assert a.coap is not None and b.coap is not None and a.bridge is not None and b.bridge is not None
        assert (await device.register()).code.is_successful()
        await session_connected(a, "relay-1")
        assert await watcher.owner("relay-1") == Owner("node-a", 1)
        await eventually(lambda: _observing(device), what="A observing the device")
        [initial] = await telemetry_matching(rest, "relay-1", lambda e: e["component"] == "temperature_0")

        async def seen_recorded() -> bool:
            return bool(await client.keys("iotct:seen:*"))

        await eventually(seen_recorded, what="the seen-at record of the Register")

        balancer.switch(B)  # the device's flow now lands on B
        # A Send at B: relayed to A, published by A's session, and answered 2.04 by A through B.
        moment = time.time()
        await send_at(device, [(TEMPERATURE, 31.5, moment)])
        [sent] = await telemetry_matching(
            rest, "relay-1", lambda e: e["body"].get("temperature") == 31.5, after=initial["sequence"]
        )
        # A notification at B: relayed to A, whose observation it is.
        device.set_value(TEMPERATURE, 32.75)
        await telemetry_matching(
            rest, "relay-1", lambda e: e["body"].get("temperature") == 32.75, after=sent["sequence"]
        )
        # A command on A's session reaches the device through B's socket; the answer comes back to A.
        before = balancer.from_backends.get(B, 0)
        status, body = await rest.request(
            "POST", "/api/devices/relay-1/components/device/commands/reboot", {"request": None}
        )
        assert status == 201 and body["responseCode"] == 200, body
        assert [path for path, _ in device.executed] == [REBOOT]
        status, body = await rest.request(
            "POST", "/api/devices/relay-1/components/device/commands/readIdentity", {}
        )
        assert status == 201 and body["responseCode"] == 200, body
        assert body["response"]["serialNumber"] == "SIM-0001"
        assert balancer.from_backends[B] > before  # the downlinks left from B's socket

        # No flapping: B relayed, it did not take the device; A still holds it, at epoch 1.
        assert await watcher.owner("relay-1") == Owner("node-a", 1)
        assert "relay-1" not in b.bridge.lives and b.pool is not None and b.pool.get("relay-1") is None
        assert b.coap.tap.counters["relayed"] >= 4  # the Send, the notification, the two answers

        # B's relay no longer carries A's downlinks: the command ends as an unanswered request, 504,
        # within the command deadline (4 s here).
        assert b.relay is not None
        await b.relay.relay.stop()
        started = asyncio.get_running_loop().time()
        status, body = await rest.request(
            "POST", "/api/devices/relay-1/components/device/commands/reboot", {"request": None}
        )
        assert status == 201 and body["responseCode"] == 504, body
        assert asyncio.get_running_loop().time() - started < 8.0
        assert len(device.executed) == 1


async def _observing(device: SimulatedDevice) -> bool:
    return any(TEMPERATURE in paths for paths in device.observed)


async def test_a_released_nodes_stale_registration_does_not_take_the_device_back(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    """A device registers at A, then (its flow moved) at B: B claims it, the hub closes A's connection and A
    lets it go — but A's registration of it has not expired. A Send that reaches A again is relayed to the
    owner B, published by B's session and answered 2.04 through A; A starts no hub connection. Before, A
    handled it as its own (it had the address's registration) and connected the device again, closing B's
    connection: a bounce per such Send."""
    async with asyncio.timeout(6 * STEP), relayed_pair(emulator, tmp_path, "stale-1") as pair:
        a, b, balancer, device, _, watcher = pair
        assert a.coap is not None and b.coap is not None and a.bridge is not None and b.bridge is not None
        activity = emulator.activity.of("stale-1")
        assert (await device.register()).code.is_successful()
        await session_connected(a, "stale-1")
        balancer.switch(B)
        assert (await device.register()).code.is_successful()  # at B: claims the device
        await session_connected(b, "stale-1")
        assert await watcher.owner("stale-1") == Owner("node-b", 2)

        async def a_let_go() -> bool:
            assert a.pool is not None and a.bridge is not None
            return a.pool.get("stale-1") is None and "stale-1" not in a.bridge.lives

        await eventually(a_let_go, what="A letting the device go")
        assert a.coap.store.by_peer(("::ffff:127.0.0.1", balancer.upstream_port, 0, 0)) is not None
        connects, taken_over = activity.hub_connects, activity.taken_over

        balancer.switch(A)  # the device's flow is back on A, where its old registration still is
        moment = time.time()
        await send_at(device, [(TEMPERATURE, 27.25, moment)])  # answered 2.04 (by B, through A)
        await telemetry_matching(rest, "stale-1", lambda e: e["body"].get("temperature") == 27.25)
        assert a.coap.tap.counters["relayed"] >= 1
        assert "stale-1" not in a.bridge.lives and a.pool is not None and a.pool.get("stale-1") is None
        assert (activity.hub_connects, activity.taken_over) == (connects, taken_over)
        assert await watcher.owner("stale-1") == Owner("node-b", 2)
        b_session = b.pool.get("stale-1") if b.pool is not None else None
        assert b_session is not None and b_session.is_connected
