"""An acknowledgement is a promise, on every path and through every start-up state: every sequence number a
device got 2.04 for is at the hub, whatever happened in between — hub faults injected through the
emulator's REST fault API, and the translator killed (SIGKILL, repeatedly, at random points; once SIGTERM)
and started again on the same state directory.

The devices are the tests' own (rawdevice.py, plain UDP sockets), the translator a real process
(process.py), the hub the emulator over TLS MQTT; nothing is mocked."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import STEP, eventually, free_udp_port, log_position
from tests.e2e.judge import hub_readings, judge
from tests.e2e.process import TranslatorProcess
from tests.e2e.rawdevice import NOT_FOUND, RawDevice


async def all_delivered(rest: RestClient, devices: list[RawDevice], after: int, timeout: float) -> None:
    async def delivered() -> bool:
        for device in devices:
            readings = set(await hub_readings(rest, device.endpoint, after))
            missing = set(device.tally.acknowledged) - readings
            assert not missing, f"{device.endpoint}: acknowledged, not at the hub (yet): {sorted(missing)}"
        return True

    await eventually(delivered, timeout=timeout, interval=0.5, what="every acknowledged reading at the hub")


async def test_an_acknowledged_send_survives_a_kill_with_a_full_outbox(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    """The case of issue 12 §1: hub away → Sends kept in the outbox → SIGKILL → start → the device gets
    4.04, registers again and sends 10 readings back to back. Every one it got 2.04 for is delivered (before
    the fix they were acknowledged while the resumed device had no codec yet, and dropped)."""
    loop = asyncio.get_running_loop()
    translator = TranslatorProcess(emulator, tmp_path / "state", free_udp_port())
    await translator.start()
    device = RawDevice("ack-1", translator.address)
    await device.open()
    try:
        start = await log_position(rest)
        assert await device.register()
        assert await device.send(0, give_up=loop.time() + STEP)
        await eventually(lambda: _has(rest, "ack-1", start, 0), what="the first reading at the hub")
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
        assert status == 200
        for n in range(1, 6):
            assert await device.send(n, give_up=loop.time() + STEP)  # kept in the outbox
        assert await translator.stop(signal.SIGKILL) == -signal.SIGKILL
        await rest.request("POST", "/emulator/faults/clear")
        await translator.start()
        refused_before = device.tally.refused.get(NOT_FOUND, 0)
        for n in range(6, 16):
            assert await device.send(n, give_up=loop.time() + STEP)
        # The restarted server did not know the registration (unless registrations are restored at start).
        assert device.tally.refused.get(NOT_FOUND, 0) >= refused_before
        await all_delivered(rest, [device], start, timeout=40)
        verdict = judge(device.tally.acknowledged, await hub_readings(rest, "ack-1", start))
        assert verdict.lost == [] and verdict.reordered == 0, verdict
    finally:
        device.close()
        await translator.stop(signal.SIGKILL)


async def _has(rest: RestClient, device_id: str, after: int, reading: int) -> bool:
    return reading in await hub_readings(rest, device_id, after)


DEVICES = 20
RUN = 40.0  # seconds of faults while the devices stream


async def test_fault_run_loses_nothing_acknowledged(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    """~20 devices stream confirmable Sends with sequence numbers for ~40 s while the hub disconnects
    everyone, goes away, expires tokens, throttles, holds PUBACKs back and moves a device, and the translator
    is SIGKILLed four times at random points (once in the middle of an outage, with a full outbox) and
    SIGTERMed once. Every acknowledged reading must be at the hub, in order per device; duplicates are
    allowed (at least once) and reported."""
    seed = int(os.environ.get("FAULT_RUN_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    translator = TranslatorProcess(emulator, tmp_path / "state", free_udp_port())
    await translator.start()
    devices = [RawDevice(f"fr-{i:02d}", translator.address) for i in range(DEVICES)]
    for device in devices:
        await device.open()
    start = await log_position(rest)
    streaming = asyncio.Event()
    streaming.set()

    first_acks: set[str] = set()
    everyone_streams = asyncio.Event()

    async def stream(device: RawDevice) -> None:
        n = 0
        while streaming.is_set():
            if await device.send(n, give_up=loop.time() + 60):
                n += 1
                first_acks.add(device.endpoint)
                if len(first_acks) == len(devices):
                    everyone_streams.set()
            await asyncio.sleep(rng.uniform(0.05, 0.15))  # the devices' pace, not a synchronisation

    async def fault(path: str, body: dict[str, Any] | None = None) -> None:
        status, answer = await rest.request("POST", f"/emulator/faults/{path}", body)
        assert status == 200, (path, status, answer)

    async def restart(signum: signal.Signals) -> None:
        await translator.stop(signum)
        await translator.start()

    async def outage_then_kill() -> None:  # the restart case: SIGKILL with telemetry in the outbox
        await fault("outage", {"seconds": 5})
        await asyncio.sleep(rng.uniform(1.0, 2.5))  # into the outage: the fault schedule
        await restart(signal.SIGKILL)

    actions: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("disconnect-all", lambda: fault("disconnect-all")),
        ("kill", lambda: restart(signal.SIGKILL)),
        ("outage", lambda: fault("outage", {"seconds": 3})),
        ("expire-tokens", lambda: fault("expire-tokens")),
        ("kill", lambda: restart(signal.SIGKILL)),
        ("throttle", lambda: fault("throttle", {"seconds": 2, "scope": "hub"})),
        ("delay-acks", lambda: fault("delay-acks", {"seconds": 3})),
        ("move", lambda: fault(f"move/{rng.choice(devices).endpoint}", {})),
        ("term", lambda: restart(signal.SIGTERM)),
        ("kill", lambda: restart(signal.SIGKILL)),
    ]
    rng.shuffle(actions)
    actions.insert(rng.randrange(len(actions) // 2), ("outage+kill", outage_then_kill))
    streams = [asyncio.create_task(stream(device)) for device in devices]
    done: list[str] = []
    try:
        async with asyncio.timeout(60):
            await everyone_streams.wait()  # every device registered and had a Send acknowledged
        pause = RUN / len(actions)
        for name, action in actions:
            await asyncio.sleep(rng.uniform(0.3, 1.7) * pause)  # the fault schedule, not a synchronisation
            async with asyncio.timeout(60):
                await action()
            done.append(name)
        await fault("clear")
        # Every device gets a Send through again after the last fault before the streams stop.
        before = {device.endpoint: len(device.tally.acknowledged) for device in devices}

        async def everyone_recovered() -> bool:
            return all(len(d.tally.acknowledged) > before[d.endpoint] for d in devices)

        await eventually(everyone_recovered, timeout=60, what="a Send of every device after the faults")
    finally:
        streaming.clear()
        finished, pending = await asyncio.wait(streams, timeout=60)
        for task in pending:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    try:
        for task in finished:
            task.result()
        await all_delivered(rest, devices, start, timeout=60)
        verdicts = {
            device.endpoint: judge(
                device.tally.acknowledged, await hub_readings(rest, device.endpoint, start)
            )
            for device in devices
        }
        acknowledged = sum(len(device.tally.acknowledged) for device in devices)
        duplicates = sum(verdict.duplicates for verdict in verdicts.values())
        refused: dict[int, int] = {}
        for device in devices:
            for code, count in device.tally.refused.items():
                refused[code] = refused.get(code, 0) + count
        print(
            f"\nfault run (seed {seed}): {' → '.join(done)}; {acknowledged} acknowledged, "
            f"lost {sum(len(v.lost) for v in verdicts.values())}, duplicates {duplicates}, "
            f"reordered {sum(v.reordered for v in verdicts.values())}; refused {refused}; "
            f"{translator.starts} translator starts"
        )
        assert all(not v.lost and v.reordered == 0 for v in verdicts.values()), (seed, verdicts)
        assert acknowledged > DEVICES * 20, "the devices hardly got through: the run proves nothing"
    finally:
        for device in devices:
            device.close()
        await translator.stop(signal.SIGKILL)
