"""Live commands and writable properties fenced (issue 17 §2): a command that arrives on a node's hub session
for a device another node has claimed since (its Register reached that node, whose hub connection is not
up yet) is answered as for an offline device — 404, as IoT Hub answers a direct method for a device that
is not online (https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-direct-methods) — and is not run
on the device. A desired-properties update likewise is neither written to the device nor acknowledged
there: the owner's session fetches the twin when it connects and settles it. The check is one Redis read
on the command and property paths only; telemetry never waits for it (§5)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.clients import CLIENT_12, DIMMER, REBOOT, light_values
from tests.e2e.cluster_nodes import node_settings
from tests.e2e.conftest import STEP, eventually, properties, session_connected, simulated
from tests.redis_server import RedisServer, needs_redis
from translator.cluster.ownership import Owner, Trigger
from translator.cluster.redis_ownership import RedisOwnership
from translator.serve import Translator

pytestmark = needs_redis

COMMAND = "/api/devices/fence-1/components/device/commands/reboot"


async def test_a_command_for_a_device_claimed_elsewhere_is_answered_404_and_not_run(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with RedisServer(tmp_path / "redis") as server, asyncio.timeout(4 * STEP):
        client = aioredis.Redis.from_url(server.url)
        other = RedisOwnership(client, "node-b")  # a node whose Register for the device just arrived
        a = Translator(node_settings(emulator, tmp_path / "a", server.url, "node-a"))
        await a.start()
        await other.start()
        try:
            async with simulated(a, "fence-1", **CLIENT_12) as device:
                await session_connected(a, "fence-1")
                status, body = await rest.request("POST", COMMAND, {"request": None})
                assert status == 201 and body["responseCode"] == 200, body  # A's own device: run
                assert [path for path, _ in device.executed] == [REBOOT]

                assert await other.claim("fence-1", Trigger.REGISTRATION) == Owner("node-b", 2)
                status, body = await rest.request("POST", COMMAND, {"request": None})
                assert status == 201 and body["responseCode"] == 404, body
                assert "owned by another node" in body["response"]["error"], body
                assert len(device.executed) == 1  # not run on the device
        finally:
            async with asyncio.timeout(STEP):
                await other.stop()
                await a.stop()
                await client.aclose()


async def test_a_desired_property_for_a_device_claimed_elsewhere_is_not_written_here(
    emulator: Emulator, rest: RestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="translator.bridge")
    async with RedisServer(tmp_path / "redis") as server, asyncio.timeout(4 * STEP):
        client = aioredis.Redis.from_url(server.url)
        other = RedisOwnership(client, "node-b")
        a = Translator(node_settings(emulator, tmp_path / "a", server.url, "node-a"))
        await a.start()
        await other.start()
        try:
            async with simulated(a, "fence-2", values=light_values()) as device:
                await session_connected(a, "fence-2")

                async def reported() -> bool:
                    return (await properties(rest, "fence-2", "lightControl_0")).get("dimmer") == 50

                await eventually(reported, what="the dimmer reported")
                assert await other.claim("fence-2", Trigger.REGISTRATION) == Owner("node-b", 2)
                status, _ = await rest.request(
                    "PATCH",
                    "/api/devices/fence-2/components/lightControl_0/properties",
                    {"dimmer": 70},
                )
                assert status == 202

                async def declined() -> bool:
                    return any("owned by another node now" in r.getMessage() for r in caplog.records)

                await eventually(declined, what="the update declined at the node that lost the device")
                assert ("PUT", "/3311/0/5851") not in device.requests  # not written to the device here
                assert device.values[DIMMER] == 50
        finally:
            async with asyncio.timeout(STEP):
                await other.stop()
                await a.stop()
                await client.aclose()
