"""The pool's pacers against the emulator with its limits on (issue 14 §3): each kind of request keeps to
its own rate, a refusal from the service slows the matching pacer only, and telemetry over a rate waits
instead of being dropped or refused by the hub."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from emulator.app import Emulator
from tests.conftest import emulator_config
from tests.iotc.conftest import FAST_BACKOFF, dps_endpoint, hub_endpoint
from translator.iotc.client.credentials import SymmetricKey
from translator.iotc.client.pool import DeviceSpec, MemoryAssignments, PoolSettings, SessionPool
from translator.iotc.client.session import SessionSettings, SessionState
from translator.iotc.protocol.approval_wait import ApprovalPolicy

MODEL = "dtmi:example:Thermostat;1"


def spec(emulator: Emulator, device_id: str) -> DeviceSpec:
    return DeviceSpec(
        device_id, SymmetricKey.from_group(emulator.application.group_primary_key, device_id), MODEL
    )


@asynccontextmanager
async def running(tmp_path: Path, **limits: Any) -> AsyncIterator[Emulator]:
    async with Emulator(emulator_config(tmp_path / "emulator", **limits)) as emulator:
        yield emulator


@asynccontextmanager
async def pool_of(
    emulator: Emulator,
    assignments: MemoryAssignments | None = None,
    approval: ApprovalPolicy | None = None,
    **settings: Any,
) -> AsyncIterator[SessionPool]:
    pool = SessionPool(
        dps=dps_endpoint(emulator),
        hub=hub_endpoint(emulator),
        settings=PoolSettings(**settings),
        session_settings=SessionSettings(
            backoff=FAST_BACKOFF, connect_timeout=10, approval=approval or ApprovalPolicy()
        ),
        assignments=assignments,
    )
    try:
        yield pool
    finally:
        await pool.close()


async def until(predicate: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_a_cold_fleet_registers_at_the_dps_rate_without_429(tmp_path: Path) -> None:
    async with (
        running(tmp_path, dps_registrations_per_minute=600) as emulator,
        pool_of(emulator, dps_per_minute=600) as pool,  # 10/s, a burst of 60
    ):
        started = time.monotonic()
        sessions = [await pool.session(spec(emulator, f"cold-{n:02d}")) for n in range(80)]
        async with asyncio.timeout(30):
            await asyncio.gather(*(session.wait_connected(30) for session in sessions))
        elapsed = time.monotonic() - started
        dps = pool.pacing.dps
        assert dps is not None
        figures = dps.figures()
    # 60 at once, then 20 at 10/s: about 2 s, which the quota allows; no 429 on the way.
    assert elapsed >= 1.8
    assert figures.granted == 80 and figures.throttled == 0
    assert "dps_registration" not in emulator.limits.refused


async def test_a_429_slows_the_dps_pacer_and_not_the_hub_one(tmp_path: Path) -> None:
    async with (
        running(tmp_path, dps_registrations_per_minute=4) as emulator,
        pool_of(emulator, dps_per_minute=60_000) as pool,  # far faster than DPS allows
    ):
        for n in range(6):
            await pool.session(spec(emulator, f"over-{n}"))
        dps, hub = pool.pacing.dps, pool.pacing.hub
        assert dps is not None and hub is not None
        await until(lambda: dps.figures().throttled >= 1, 10)
        assert dps.figures().rate < dps.configured
        assert hub.figures().throttled == 0 and hub.figures().rate == hub.configured
    assert emulator.limits.refused["dps_registration"] >= 1


async def test_connack_3_slows_the_hub_pacer_and_every_device_connects(tmp_path: Path) -> None:
    async with (
        running(tmp_path, hub_connects_per_second=4) as emulator,
        pool_of(emulator, connect_rate=1000, connect_burst=1000, dps_per_minute=60_000) as pool,
    ):
        sessions = [await pool.session(spec(emulator, f"hub-{n:02d}")) for n in range(16)]
        async with asyncio.timeout(30):
            await asyncio.gather(*(session.wait_connected(30) for session in sessions))
        hub, dps = pool.pacing.hub, pool.pacing.dps
        assert hub is not None and dps is not None
        assert hub.figures().throttled >= 1
        assert dps.figures().throttled == 0
    assert emulator.limits.refused["hub_connect"] >= 1


async def test_devices_with_a_cached_assignment_skip_dps(tmp_path: Path) -> None:
    assignments = MemoryAssignments()
    async with running(tmp_path) as emulator:
        async with pool_of(emulator, assignments=assignments) as first:
            sessions = [await first.session(spec(emulator, f"cached-{n}")) for n in range(5)]
            await asyncio.gather(*(session.wait_connected(10) for session in sessions))
        async with pool_of(emulator, assignments=assignments) as second:
            sessions = [await second.session(spec(emulator, f"cached-{n}")) for n in range(5)]
            await asyncio.gather(*(session.wait_connected(10) for session in sessions))
            dps, hub = second.pacing.dps, second.pacing.hub
            assert dps is not None and hub is not None
            assert dps.figures().granted == 0
            assert hub.figures().granted == 5


async def test_telemetry_over_the_device_rate_waits_and_nothing_is_refused(tmp_path: Path) -> None:
    async with (
        running(tmp_path, device_messages_per_second=20, shaping_seconds=0.5) as emulator,
        pool_of(emulator, device_telemetry_rate=20) as pool,
    ):
        session = await pool.session(spec(emulator, "chatty"))
        await session.wait_connected(10)
        started = time.monotonic()
        async with asyncio.timeout(20):
            sends = [session.send_telemetry(b'{"n": %d}' % n, timeout=15) for n in range(60)]
            await asyncio.gather(*sends)
        elapsed = time.monotonic() - started
        assert session.metrics.connects == 1  # never throttled off the hub
    # 20 at once, then 40 at 20/s: the hub never had to shape more than its backlog allows.
    assert elapsed >= 1.6
    assert emulator.limits.refused == {}
    assert {event.body["n"] for event in emulator.hub.telemetry.since(0, "chatty")} == set(range(60))


async def test_reported_properties_over_the_twin_limits_are_not_sent(tmp_path: Path) -> None:
    async with running(tmp_path) as emulator, pool_of(emulator) as pool:
        session = await pool.session(spec(emulator, "twin-big"))
        await session.wait_connected(10)
        await session.get_twin()
        version = await session.patch_reported({"fine": 1, "huge": "x" * 5000})
        assert version is not None
        for n in range(8):
            assert await session.patch_reported({f"p{n}": "y" * 4000}) is not None
        assert await session.patch_reported({"p8": "y" * 4000}) is None  # would exceed 32 KB
        assert session.metrics.failures["reported_too_large"] == 2
    reported = emulator.application.device("twin-big").twin.reported  # type: ignore[union-attr]
    assert reported["fine"] == 1 and "huge" not in reported and "p8" not in reported


async def test_devices_waiting_for_approval_ask_dps_after_new_devices(tmp_path: Path) -> None:
    # IoT Central refuses unapproved devices at DPS (401, sub-code 400209:
    # https://learn.microsoft.com/azure/iot-central/core/troubleshoot-connection), and every retry still
    # counts against the DPS registration quota. Refused devices ask again in the pacer's deferred lane, so
    # a fleet of them cannot hold up a new device: here eight refused devices retry as fast as the pacer lets
    # them, and three new devices go ahead of all of them.
    async with (
        running(tmp_path, auto_approve=False, dps_retry_after=0) as emulator,
        pool_of(emulator, approval=ApprovalPolicy(base=0.02, cap=0.04), dps_per_minute=120) as pool,
    ):
        dps = pool.pacing.dps
        assert dps is not None
        refused = [await pool.session(spec(emulator, f"urn:imei:35{n:013d}")) for n in range(8)]
        await until(lambda: dps.figures().waiting >= 6, timeout=30)  # refused devices queue to ask again
        emulator.dps.auto_approve = True  # IoT Central approves devices it has not seen from now on
        granted = dps.figures().granted
        fresh = [await pool.session(spec(emulator, f"new-{n}.sensor_{n}")) for n in range(3)]
        past_dps = (SessionState.CONNECTING, SessionState.CONNECTED)
        await until(lambda: all(session.status.state in past_dps for session in fresh), timeout=30)
        # The three new registrations, and at most the one refused device whose turn it already was (first
        # come, first served would have put them behind the six or more refused devices queued).
        assert dps.figures().granted - granted <= 4
        async with asyncio.timeout(30):
            await asyncio.gather(*(session.wait_connected(30) for session in fresh))
        assert all(session.status.state is not SessionState.CONNECTED for session in refused)
