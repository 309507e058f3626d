"""Two translators (serve processes) behind a real nginx UDP balancer on one real Redis, with streaming
devices: the set-up of the cluster e2e tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import aiocoap
import redis.asyncio as aioredis
from aiocoap.numbers.codes import Code as AioCode
from aiocoap.numbers.constants import TransportTuning

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.clients import TEMPERATURE
from tests.e2e.conftest import STEP, free_udp_port
from tests.e2e.process import TranslatorProcess
from tests.nginx_server import NginxServer
from tests.redis_server import RedisServer
from translator.cluster.redis_ownership import RedisOwnership
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.lwm2m import ContentFormat, Record, encode
from translator.lwm2m import Path as Lwm2mPath

HEARTBEAT_TTL = 3.0


DEVICES = 6


MAX_DEVICES = 16


PERIOD = 0.25  # seconds between a device's readings: 4/s, under IoT Central's 10/s per device


FAST = TransportTuning()


@dataclass
class Streamer:
    """A device streaming CON readings through the balancer, registering again when the node it reaches
    does not know it (4.04), as an LwM2M client does."""

    device: SimulatedDevice
    values: count[int]
    acknowledged: set[float] = field(default_factory=set)
    registrations: int = 0
    last_ack: float = 0.0  # time.monotonic() of the last 2.04

    @property
    def name(self) -> str:
        return self.device.endpoint

    async def register(self) -> None:
        async with asyncio.timeout(STEP):
            while True:
                response = await self.device.register()
                if response.code == AioCode.CREATED:
                    self.registrations += 1
                    return
                await asyncio.sleep(0.2)  # a device's pace between attempts, not a synchronisation

    async def _send(self, value: float) -> Any:
        payload = encode(
            ContentFormat.SENML_JSON,
            [Record(TEMPERATURE, value, time.time())],
            base_path=Lwm2mPath(),
            registry=self.device.registry,
        )
        message = aiocoap.Message(
            code=AioCode.POST,
            uri=self.device._uri("dp"),
            content_format=ContentFormat.SENML_JSON,
            payload=payload,
            transport_tuning=FAST,
        )
        return await self.device._send(message, timeout=STEP)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            value = float(next(self.values))
            try:
                response = await self._send(value)
            except (TimeoutError, aiocoap.error.Error):
                continue  # not acknowledged: nothing promised
            if response.code == AioCode.CHANGED:
                self.acknowledged.add(value)
                self.last_ack = time.monotonic()
            elif response.code == AioCode.NOT_FOUND:
                await self.register()  # this node does not know us: the balancer moved us
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PERIOD):
                    await stop.wait()


def _store_section(url: str, node: str) -> str:
    return f"""
[store]
redis_url = "{url}"
node_id = "{node}"
heartbeat_ttl = {HEARTBEAT_TTL}
"""


@dataclass
class Cluster:
    redis: RedisServer
    nodes: dict[str, TranslatorProcess]
    balancer: NginxServer
    watcher: RedisOwnership
    streamers: list[Streamer]

    async def owners(self) -> dict[str, str]:
        """device → the node owning it now."""
        found = {}
        for streamer in self.streamers:
            owner = await self.watcher.owner(streamer.name)
            found[streamer.name] = owner.node if owner is not None else ""
        return found


@contextlib.asynccontextmanager
async def cluster(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with contextlib.AsyncExitStack() as stack:
        redis_server = await stack.enter_async_context(RedisServer(tmp_path / "redis"))
        nodes: dict[str, TranslatorProcess] = {}
        for name in ("node-a", "node-b"):
            node = TranslatorProcess(emulator, tmp_path / name / "state", free_udp_port())
            node.config.write_text(node.config.read_text() + _store_section(redis_server.url, name))
            nodes[name] = node
        await asyncio.gather(*(node.start() for node in nodes.values()))
        for node in nodes.values():
            stack.push_async_callback(node.stop)
        balancer = await stack.enter_async_context(
            NginxServer(tmp_path / "nginx", [node.address for node in nodes.values()])
        )
        client = aioredis.Redis.from_url(redis_server.url)
        stack.push_async_callback(client.aclose)
        running = Cluster(redis_server, nodes, balancer, RedisOwnership(client, "watcher"), [])

        async def add(n: int) -> Streamer:
            device = SimulatedDevice(f"nginx-{n}", balancer.address, options=SimulatorOptions(version="1.2"))
            await device.start()
            stack.push_async_callback(device.close)
            return Streamer(device, count(n * 1_000_000))

        running.streamers = [await add(n) for n in range(DEVICES)]
        await asyncio.gather(*(streamer.register() for streamer in running.streamers))
        # The hash may put every source port on one node (1 in 32 for six devices): add devices until both
        # nodes have some, so the kill always moves some and spares some.
        while len(set((await running.owners()).values())) < 2 and len(running.streamers) < MAX_DEVICES:
            streamer = await add(len(running.streamers))
            await streamer.register()
            running.streamers.append(streamer)
        yield running


async def command_answered(rest: RestClient, device_id: str) -> None:
    status, body = await rest.request(
        "POST", f"/api/devices/{device_id}/components/device/commands/readIdentity", {}
    )
    assert status == 201 and body["responseCode"] == 200, (device_id, status, body)
