"""Redis unreachable at a Register (issue 17 §3): the Register gets a clear answer — 5.03 with Max-Age and a
log line — instead of a session opened without knowing the device's owner; devices already registered go
on streaming (the hub's PUBACK needs no Redis), and nothing acknowledged is lost across the outage."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient
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
from translator.cluster.register_claim import RETRY_AFTER
from translator.serve import Translator

pytestmark = needs_redis


async def test_a_register_while_redis_is_unreachable_is_refused_503_and_nothing_acknowledged_is_lost(
    emulator: Emulator, rest: RestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="translator.coap")
    async with RedisServer(tmp_path / "redis") as server:
        settings = restartable_settings(emulator, tmp_path / "a")
        settings = replace(settings, store=replace(settings.store, redis_url=server.url, node_id="node-a"))
        node = Translator(settings)
        await node.start()
        try:
            async with asyncio.timeout(4 * STEP), simulated(node, "outage-1", **CLIENT_12) as streaming:
                await session_connected(node, "outage-1")
                start = await log_position(rest)
                acknowledged: set[float] = set()
                value = 100.0

                async def stream(count: int) -> None:
                    nonlocal value
                    for _ in range(count):
                        value += 1
                        if (await reading(streaming, value)).code == AioCode.CHANGED:
                            acknowledged.add(value)

                await stream(5)
                await server.kill()
                await stream(5)  # the direct path: acknowledged on the hub's PUBACK, Redis or not

                async with simulated(node, "outage-2", register=False, **CLIENT_12) as newcomer:
                    refused = await newcomer.register()
                    assert refused.code == AioCode.SERVICE_UNAVAILABLE, refused
                    assert refused.opt.max_age == RETRY_AFTER
                    assert node.pool is not None and node.pool.get("outage-2") is None  # no session opened
                    assert any(
                        "refused POST /rd" in r.getMessage()
                        and "5.03 the store cannot be read now" in r.getMessage()
                        for r in caplog.records
                    )

                    await server.start()  # the same data and port

                    async def registered() -> bool:
                        return bool((await newcomer.register()).code == AioCode.CREATED)

                    await eventually(
                        registered, interval=0.5, what="the Register accepted once Redis is back"
                    )
                    await session_connected(node, "outage-2")
                await stream(5)

                assert len(acknowledged) >= 10

                async def all_arrived() -> bool:
                    return acknowledged <= await arrived(rest, "outage-1", start)

                await eventually(all_arrived, what="every acknowledged reading at the hub")
        finally:
            async with asyncio.timeout(STEP):
                await node.stop()
