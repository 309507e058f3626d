"""Downlinks find the device (issue 17 §4): two translators on one Redis behind a balancer that moves a
device's flow from the node that owns it (A) to the other (B). B does not take the device on a Send or a
notification (only a Register/Update claims): it relays the datagrams to A, which handles them and answers
through B's socket; A's commands reach the device through B, and the device's answers come back."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import redis.asyncio as aioredis

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import STEP, eventually, send_at, session_connected, telemetry_matching
from tests.e2e.test_ownership import _node
from tests.e2e.test_restart import CLIENT_12, REBOOT, TEMPERATURE
from tests.e2e.udp_balancer import UdpBalancer
from tests.redis_server import RedisServer, needs_redis
from translator.cluster.ownership import Owner
from translator.cluster.redis_ownership import RedisOwnership
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.serve import Translator

pytestmark = needs_redis

A, B = 0, 1


async def test_a_device_whose_datagrams_move_to_another_node_is_served_through_it(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with RedisServer(tmp_path / "redis") as server, asyncio.timeout(6 * STEP):
        client = aioredis.Redis.from_url(server.url)
        watcher = RedisOwnership(client, "watcher")
        a = Translator(_node(emulator, tmp_path / "a", server.url, "node-a"))
        b = Translator(_node(emulator, tmp_path / "b", server.url, "node-b"))
        await a.start()
        await b.start()
        assert a.coap is not None and b.coap is not None and a.bridge is not None and b.bridge is not None
        balancer = UdpBalancer([("127.0.0.1", a.coap.port), ("127.0.0.1", b.coap.port)])
        await balancer.start()
        device = SimulatedDevice(
            "relay-1", balancer.address, options=replace(SimulatorOptions(), **CLIENT_12)
        )
        await device.start()
        try:
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
        finally:
            async with asyncio.timeout(STEP):
                await device.close()
                balancer.close()
                await b.stop()
                await a.stop()
                await client.aclose()


async def _observing(device: SimulatedDevice) -> bool:
    return any(TEMPERATURE in paths for paths in device.observed)
