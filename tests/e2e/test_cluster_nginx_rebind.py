"""A device whose address changes behind nginx (issue 17 §8): a NAT rebinding gives it a new source port,
which nginx's `hash $remote_addr$remote_port consistent` may send to the other translator. Its next Update
then reaches a node that does not know its registration (4.04: nginx shows each node only its own address,
so the relay cannot attribute it), the device registers again there, as LwM2M clients do, that node claims
it, and commands and Sends reach it at its new home without a DPS registration or a fight over the hub
connection. (Behind an LVS-style balancer that keeps the device's address, the relay carries it instead:
tests/e2e/test_relay.py.)"""

from __future__ import annotations

import asyncio
from itertools import count
from pathlib import Path

import pytest
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.cluster_nodes import arrived
from tests.e2e.conftest import eventually, log_position
from tests.e2e.nginx_cluster import Streamer, cluster, command_answered
from tests.nginx_server import needs_nginx
from tests.redis_server import needs_redis
from translator.coap.simulator import SimulatedDevice, SimulatorOptions

pytestmark = [needs_redis, needs_nginx]

REBINDS = 24  # each lands on the other node with probability 1/2: all 24 missing it is 1 in 16 million


@pytest.mark.timeout(120)
async def test_after_a_rebinding_to_the_other_node_commands_and_sends_reach_the_device(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with asyncio.timeout(100), cluster(emulator, tmp_path) as running:
        device = SimulatedDevice(
            "urn:imei:490154203237518",
            running.balancer.address,
            options=SimulatorOptions(version="1.2", nat=True),
        )
        await device.start()
        try:
            streamer = Streamer(device, count(1))
            await streamer.register()
            name = streamer.name
            running.streamers.append(streamer)

            async def owned() -> str:
                return (await running.owners())[name]

            first = await eventually(owned, what="the device owned by a node")
            await eventually(lambda: _online(emulator, name), what="the device connected to the hub")
            for _ in range(REBINDS):
                await device.rebind()
                response = await device.update()
                if response.code == AioCode.NOT_FOUND:
                    await streamer.register()  # a node that does not know it: register there
                else:
                    assert response.code == AioCode.CHANGED, response
                if await owned() != first:
                    break
            moved_to = await owned()
            assert moved_to not in ("", first), "the device never reached the other node"
            assert streamer.registrations == 2  # moved by registering again after a 4.04, not otherwise

            async def connected_from_its_new_home() -> bool:
                return emulator.activity.of(name).view()["hubConnects"] == 2 and emulator.hub.online(name)

            await eventually(connected_from_its_new_home, what="the new owner's hub session")
            await command_answered(
                rest, name
            )  # the command goes to the new owner's session and reaches the device
            start = await log_position(rest)
            reading = 4242.5
            response = await streamer._send(reading)
            assert response.code == AioCode.CHANGED

            async def there() -> bool:
                return reading in await arrived(rest, name, start)

            await eventually(there, what="the Send after the move at the hub")
            activity = emulator.activity.of(name).view()
            assert activity["dpsRegistrations"] == 1  # the assignment cached in Redis: no DPS again
        finally:
            await device.close()


async def _online(emulator: Emulator, name: str) -> bool:
    return emulator.hub.online(name)
