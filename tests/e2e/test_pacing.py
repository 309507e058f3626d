"""A fleet over the hub's device-to-cloud rate, end to end (real translator, real emulator with its limits
on, real UDP): every confirmable message is answered 2.04 only once it is safe (published, or kept in the
outbox), none is lost, and the hub never has to throttle a device off (issue 14 §3).

The hub's send rate is scaled down (20/s, 1 s of traffic shaping) so that 40 devices exceed it; the
translator paces its fleet's telemetry at the same rate."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import aiohttp

from emulator.app import Emulator
from tests.conftest import RestClient, emulator_config
from tests.e2e.conftest import (
    STEP,
    running_translator,
    send_at,
    session_connected,
    simulated,
    telemetry_matching,
    translator_settings,
)
from translator.coap.simulator import SimulatedDevice
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator

TEMPERATURE = Lwm2mPath(3303, 0, 5700)
DEVICES = 40


async def test_a_fleet_over_the_hub_send_rate_is_paced_and_nothing_is_lost(tmp_path: Path) -> None:
    config = emulator_config(tmp_path / "emulator", d2c_per_second=20, shaping_seconds=1.0)
    async with Emulator(config) as emulator, aiohttp.ClientSession() as client:
        rest = RestClient(client, f"http://127.0.0.1:{emulator.http_port}")
        # DPS at its real quota would make this test about DPS: registrations are opened up here.
        settings = translator_settings(
            emulator, tmp_path / "translator", telemetry_rate=20.0, dps_registrations_per_minute=6000.0
        )
        async with running_translator(settings) as translator:
            await _fleet_burst(emulator, rest, translator)


def _sent(event: dict[str, Any]) -> bool:
    return bool(event["body"] == {"temperature": 99.0})


async def _fleet_burst(emulator: Emulator, rest: RestClient, translator: Translator) -> None:
    async with contextlib.AsyncExitStack() as stack:
        devices: list[SimulatedDevice] = []
        for n in range(DEVICES):
            devices.append(await stack.enter_async_context(simulated(translator, f"fleet-{n:02d}")))
        for n in range(DEVICES):
            await session_connected(translator, f"fleet-{n:02d}")
        now = time.time()
        async with asyncio.timeout(STEP):
            # Every device sends at once (on top of their first observed values): twice what the hub takes
            # in a second. All are answered 2.04 — safe: published, or kept in the outbox ...
            await asyncio.gather(*(send_at(device, [(TEMPERATURE, 99.0, now)]) for device in devices))
        # ... and all are delivered, at the hub's rate, without the hub refusing a send or a device.
        for n in range(DEVICES):
            await telemetry_matching(
                rest, f"fleet-{n:02d}", lambda event: event["body"] == {"temperature": 99.0}
            )
    assert emulator.limits.refused == {}
    assert translator.pool is not None
    assert all(
        session is not None and session.metrics.connects == 1
        for session in (translator.pool.get(f"fleet-{n:02d}") for n in range(DEVICES))
    )
    telemetry = translator.pool.pacing.telemetry
    assert telemetry is not None and telemetry.figures().granted >= DEVICES
