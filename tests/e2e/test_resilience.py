"""Delivery guarantees end to end: an emulator outage, expired tokens and a translator restart in the middle
of a telemetry stream lose nothing and keep the order, with the device's original timestamps; a restart
resumes without running DPS again (the assignment is cached in the store)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiocoap
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    STEP,
    eventually,
    iso_ms,
    log_position,
    restartable_settings,
    running_translator,
    send_at,
    session_connected,
    simulated,
    telemetry_matching,
    translator_settings,
)
from translator.coap.simulator import SimulatedDevice
from translator.lwm2m import ContentFormat, Record, Value, encode
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator

TEMPERATURE = Lwm2mPath(3303, 0, 5700)
SENSOR_ONLY: dict[Lwm2mPath, Value] = {TEMPERATURE: 21.5, Lwm2mPath(3303, 0, 5701): "Cel"}


def _streamed(event: dict[str, Any]) -> bool:
    # Readings 1000 + n; the values read at registration may carry a (receive) time too, when outboxed.
    return event["component"] == "temperature_0" and float(event["body"].get("temperature", 0)) >= 1000


async def _stream(
    device: SimulatedDevice,
    numbers: range,
    base: float,
    interval: float,
    under_way: asyncio.Event | None = None,
) -> None:
    """Reading n is the value 1000 + n at device time base + n/4 s (exact in binary, so exact in ms).
    `under_way` is set once a fifth of the readings were acknowledged: a fault injected then hits the
    middle of the stream however slow the machine is (a sleep could hit before the first Send)."""
    for n in numbers:
        await send_at(device, [(TEMPERATURE, 1000.0 + n, base + n / 4)])
        if under_way is not None and n + 1 == max(1, len(numbers) // 5):
            under_way.set()
        await asyncio.sleep(interval)  # the stream's pace, not a synchronisation


def _check_stream(events: list[dict[str, Any]], numbers: range, base: float) -> None:
    """Nothing lost, order kept (at-least-once: a message may repeat, but only right where it was)."""
    seen = [int(event["body"]["temperature"]) - 1000 for event in events]
    assert seen == sorted(seen), f"order broken: {seen}"
    assert sorted(set(seen)) == list(numbers), f"lost: {sorted(set(numbers) - set(seen))}"
    for event in events:
        n = int(event["body"]["temperature"]) - 1000
        assert event["properties"]["iothub-creation-time-utc"] == iso_ms(base + n / 4)


async def test_emulator_outage_during_a_stream_loses_nothing(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "out-1", values=SENSOR_ONLY) as device:
        await session_connected(translator, "out-1")
        start = await log_position(rest)
        base = float(int(time.time()) - 600)
        numbers = range(50)
        under_way = asyncio.Event()
        streaming = asyncio.create_task(_stream(device, numbers, base, 0.1, under_way))
        async with asyncio.timeout(STEP):
            await under_way.wait()
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 4})
        assert status == 200
        async with asyncio.timeout(STEP):
            await streaming  # every Send was acknowledged (2.04) although the hub was away
        events = await telemetry_matching(rest, "out-1", _streamed, len(numbers), after=start, timeout=40)
        _check_stream(events, numbers, base)
        # The outage really sent messages through the outbox.
        outboxed = translator.metrics.registry.get_sample_value("iotc_translator_outboxed_total")
        assert outboxed is not None and outboxed > 0

        async def drained() -> bool:
            return translator.store.outbox_size() == 0

        await eventually(drained, what="the outbox to drain")  # removed once the replay is acknowledged


async def test_token_expiry_during_a_stream_loses_nothing(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "tok-1", values=SENSOR_ONLY) as device:
        await session_connected(translator, "tok-1")
        assert translator.pool is not None
        session = translator.pool.get("tok-1")
        assert session is not None
        connects = session.metrics.connects
        start = await log_position(rest)
        base = float(int(time.time()) - 600)
        numbers = range(40)
        under_way = asyncio.Event()
        streaming = asyncio.create_task(_stream(device, numbers, base, 0.05, under_way))
        async with asyncio.timeout(STEP):
            await under_way.wait()
        status, body = await rest.request("POST", "/emulator/faults/expire-tokens")
        assert status == 200 and body["dropped"] >= 1
        async with asyncio.timeout(STEP):
            await streaming
        events = await telemetry_matching(rest, "tok-1", _streamed, len(numbers), after=start, timeout=30)
        _check_stream(events, numbers, base)
        assert session.metrics.connects > connects  # it came back with a fresh token


async def test_restart_resumes_without_provisioning_again(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    settings = restartable_settings(emulator, tmp_path / "translator")
    base = float(int(time.time()) - 600)
    async with (
        running_translator(settings) as first,
        simulated(first, "rs-1", values=SENSOR_ONLY) as device,
    ):
        await session_connected(first, "rs-1")
        start = await log_position(rest)
        await _stream(device, range(5), base, 0.0)
        await telemetry_matching(rest, "rs-1", _streamed, 5, after=start)
        assert first.pool is not None
        assert first.pool.counters["dps_registrations"] == 1
        provisioned = _last_provisioned(emulator, "rs-1")
        assert provisioned

        # The hub goes away: what the device sends now is acknowledged from the outbox...
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
        assert status == 200
        await _stream(device, range(5, 10), base, 0.0)
        assert await first.store.outbox_depth("rs-1") == 5
        await first.stop()

        # ...and survives the restart: a new translator on the same state directory and port.
        await rest.request("POST", "/emulator/faults/clear")
        async with running_translator(settings) as second:
            # The registration was restored: the client's next Update is simply accepted.
            response = await device.update()
            assert response.code == AioCode.CHANGED
            await session_connected(second, "rs-1")
            await _stream(device, range(10, 15), base, 0.0)
            events = await telemetry_matching(rest, "rs-1", _streamed, 15, after=start, timeout=30)
            _check_stream(events, range(15), base)
            assert second.pool is not None
            assert second.pool.counters["dps_registrations"] == 0
            assert _last_provisioned(emulator, "rs-1") == provisioned


async def test_restart_replays_the_outbox_of_a_device_that_does_not_come_back(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    """Telemetry acknowledged from the outbox is delivered after a restart even if its device never
    registers again: the new translator resumes the device's session for its outbox alone."""
    settings = restartable_settings(emulator, tmp_path / "translator")
    base = float(int(time.time()) - 600)
    async with (
        running_translator(settings) as first,
        simulated(first, "gone-1", values=SENSOR_ONLY) as device,
    ):
        await session_connected(first, "gone-1")
        start = await log_position(rest)
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
        assert status == 200
        await _stream(device, range(5), base, 0.0)
        assert await first.store.outbox_depth("gone-1") == 5
    # The device is gone for good; the hub comes back; a new translator starts on the same state.
    await rest.request("POST", "/emulator/faults/clear")
    async with running_translator(settings) as second:
        events = await telemetry_matching(rest, "gone-1", _streamed, 5, after=start, timeout=30)
        _check_stream(events, range(5), base)

        async def drained() -> bool:
            return second.store.outbox_size() == 0

        await eventually(drained, what="the outbox to drain")
        assert second.pool is not None
        assert second.pool.counters["dps_registrations"] == 0


def _last_provisioned(emulator: Emulator, device_id: str) -> str:
    device = emulator.application.device(device_id)
    assert device is not None
    return device.last_provisioned


async def test_offline_command_survives_a_restart(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    """An offline command taken from IoT Central for a sleeping device is kept in the store: a translator
    restarted before the device wakes still runs it."""
    settings = restartable_settings(emulator, tmp_path / "translator")
    async with running_translator(settings) as first, simulated(first, "oc-1", queue_mode=True) as device:
        await session_connected(first, "oc-1")
        await device.sleep()
        status, body = await rest.request(
            "POST", "/api/devices/oc-1/components/device/commands/reboot?queued=true", {}
        )
        assert status == 202, body

        async def taken() -> bool:
            entry = emulator.application.device("oc-1")
            return entry is not None and not entry.c2d and bool(await first.store.commands("oc-1"))

        await eventually(taken, what="the translator to take and keep the offline command")
        await first.stop()

        async with running_translator(settings) as second:
            await device.start()  # wakes up: its registration was restored, so its Update is accepted
            assert (await device.update()).code == AioCode.CHANGED

            async def executed() -> bool:
                return bool(device.executed)

            await eventually(executed, what="the kept command executed")
            assert [path for path, _ in device.executed] == [Lwm2mPath(3, 0, 4)]

            async def forgotten() -> bool:
                return not await second.store.commands("oc-1")

            await eventually(forgotten, what="the command removed from the store")


async def _raw_send(device: SimulatedDevice, value: float, at: float) -> Any:
    """A Send whose answer the test inspects itself (send_at insists on success)."""
    records = [Record(TEMPERATURE, value, at)]
    message = aiocoap.Message(
        code=AioCode.POST,
        uri=device._uri("dp"),
        content_format=ContentFormat.SENML_JSON,
        payload=encode(ContentFormat.SENML_JSON, records, base_path=Lwm2mPath()),
    )
    return await device._send(message, timeout=STEP)


async def test_a_store_failure_refuses_one_message_and_delivery_goes_on(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    """When the outbox cannot be written the Send is answered 5.03 (the device keeps the reading), and the
    device's delivery worker lives on: once the store is back, the next messages are kept and delivered."""
    async with (
        Translator(translator_settings(emulator, tmp_path / "translator")) as translator,
        simulated(translator, "store-1", values=SENSOR_ONLY) as device,
    ):
        await session_connected(translator, "store-1")
        start = await log_position(rest)
        await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
        base = float(int(time.time()) - 60)
        await translator.store.close()
        response = await _raw_send(device, 1000.0, base)
        assert response.code == AioCode.SERVICE_UNAVAILABLE
        await translator.store.open()
        await _stream(device, range(2), base, 0.0)  # acknowledged from the outbox again
        assert await translator.store.outbox_depth("store-1") == 2
        await rest.request("POST", "/emulator/faults/clear")
        events = await telemetry_matching(rest, "store-1", _streamed, 2, after=start, timeout=30)
        _check_stream(events, range(2), base)


async def test_full_outbox_pushes_back_instead_of_dropping(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    """While the hub is away the outbox keeps at most `outbox_device_limit` messages per device; the next
    confirmable Send is refused with 5.03 and a Max-Age, so the device keeps the reading and retries."""
    settings = translator_settings(emulator, tmp_path / "translator")
    settings = replace(settings, store=replace(settings.store, outbox_device_limit=3))
    async with (
        Translator(settings) as translator,
        simulated(translator, "full-1", values=SENSOR_ONLY) as device,
    ):
        await session_connected(translator, "full-1")
        # The set-up's reading must be delivered before the outage: outboxed, it would take one of the three
        # places (under load it can still be on its way when the session is up).
        [initial] = await telemetry_matching(rest, "full-1", lambda e: e["body"].get("temperature") == 21.5)
        start = initial["sequence"]
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
        assert status == 200
        base = float(int(time.time()) - 60)
        await _stream(device, range(3), base, 0.0)  # kept: acknowledged 2.04
        response = await _raw_send(device, 1003.0, base + 3 / 4)
        assert response.code == AioCode.SERVICE_UNAVAILABLE
        assert response.opt.max_age is not None and response.opt.max_age > 0
        assert await translator.store.outbox_depth("full-1") == 3

        await rest.request("POST", "/emulator/faults/clear")
        events = await telemetry_matching(rest, "full-1", _streamed, 3, after=start, timeout=30)
        _check_stream(events, range(3), base)
        await send_at(device, [(TEMPERATURE, 1003.0, base + 3 / 4)])  # the device's retry is taken
        events = await telemetry_matching(rest, "full-1", _streamed, 4, after=start, timeout=30)
        _check_stream(events, range(4), base)


async def test_a_hub_slow_to_acknowledge_loses_nothing_and_the_outbox_drains_by_itself(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """The hub stays connected but holds its PUBACKs back longer than `telemetry_timeout`: each Send is
    kept in the outbox and acknowledged (2.04), and once the hub acknowledges again the outbox drains with
    no new message and no reconnect to prompt it (duplicates allowed, order kept)."""
    async with simulated(translator, "slow-1", values=SENSOR_ONLY) as device:
        await session_connected(translator, "slow-1")
        start = await log_position(rest)
        base = float(int(time.time()) - 300)
        # Longer than the replays the three Sends prompt (each waits telemetry_timeout = 2 s).
        status, _ = await rest.request("POST", "/emulator/faults/delay-acks", {"seconds": 12})
        assert status == 200
        numbers = range(3)
        async with asyncio.timeout(STEP):
            await _stream(device, numbers, base, 0.0)  # each answered 2.04 once kept
        outboxed = translator.metrics.registry.get_sample_value("iotc_translator_outboxed_total")
        assert outboxed is not None and outboxed >= 1

        async def drained() -> bool:
            return await translator.store.outbox_depth("slow-1") == 0

        await eventually(drained, timeout=30, what="the outbox to drain without a new message")
        events = await telemetry_matching(rest, "slow-1", _streamed, len(numbers), after=start, timeout=30)
        _check_stream(events, numbers, base)
        session = translator.pool.get("slow-1") if translator.pool is not None else None
        assert session is not None and session.metrics.connects == 1, "drained without reconnecting"
