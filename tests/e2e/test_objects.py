"""What a device has, and what is done with it (issue 13 §5): an object instance announced in an Update gets
its component; telemetry keeps the time it was received; what is not translated is said once."""

from __future__ import annotations

import logging
import time

import aiocoap
import pytest
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    eventually,
    iso_ms,
    log_position,
    session_connected,
    simulated,
    telemetry_matching,
)
from translator.coap.simulator import SimulatedDevice
from translator.lwm2m import ContentFormat, Path, Record, Value, encode
from translator.serve import Translator

SECOND = Path(3303, 1, 5700)


async def _observing(device: SimulatedDevice, path: Path) -> bool:
    return any(any(path.startswith(p) for p in paths) for paths in device.observed)


@pytest.mark.parametrize("announce", ["update", "register"])
async def test_an_instance_announced_in_an_update_gets_its_component(
    emulator: Emulator, rest: RestClient, translator: Translator, announce: str
) -> None:
    async with simulated(translator, "grow-1", composite="unsupported") as device:
        await session_connected(translator, "grow-1")
        await eventually(lambda: _observing(device, Path(3303, 0, 5700)), what="the first sensor observed")
        # A second temperature sensor appears (created locally): the device says so in an Update (or
        # registers again with the new object list).
        device.values.update({SECOND: 30.5, Path(3303, 1, 5701): "Cel"})
        response = await (device.update(with_objects=True) if announce == "update" else device.register())
        assert response.code.is_successful(), response
        await eventually(lambda: _observing(device, SECOND), what="the new instance observed")
        assert ("GET", "/3303/1") in device.requests  # its properties were read
        start = await log_position(rest)
        device.set_value(SECOND, 31.25)
        # The new instance's first reading (30.5, read at its set-up) may still be on its way: wait for the
        # change itself.
        [event] = await telemetry_matching(
            rest,
            "grow-1",
            lambda e: e["component"] == "temperature_1" and e["body"].get("temperature") == 31.25,
            after=start,
        )
        assert event["body"] == {"temperature": 31.25}


TEMPERATURE = Path(3303, 0, 5700)


async def _disconnected(translator: Translator, device_id: str) -> bool:
    assert translator.pool is not None
    session = translator.pool.get(device_id)
    return session is not None and not session.is_connected


async def test_telemetry_kept_in_the_outbox_keeps_the_time_it_was_received(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """A notification without a device timestamp, received while the hub is away: it waits in the outbox and
    is replayed later, stamped with when it came from the device (not with the replay time)."""
    async with simulated(translator, "late-2") as device:
        await session_connected(translator, "late-2")
        await eventually(lambda: _observing(device, TEMPERATURE), what="the observation")
        start = await log_position(rest)
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 3})
        assert status == 200
        await eventually(lambda: _disconnected(translator, "late-2"), what="the hub gone")
        before = time.time()
        device.set_value(TEMPERATURE, 17.25)

        async def outboxed() -> bool:
            # This reading's row itself: another one kept meanwhile (a set-up value) would end the wait
            # before the notification even came, and `after` would precede its stamp.
            kept = await translator.store.outbox_peek("late-2", 100)
            return any(b"17.25" in message.payload for message in kept)

        await eventually(outboxed, what="the notification in the outbox")
        after = time.time()
        [event] = await telemetry_matching(
            rest, "late-2", lambda e: e["body"].get("temperature") == 17.25, after=start
        )
        stamped = event["properties"].get("iothub-creation-time-utc")
        assert stamped is not None, event
        assert iso_ms(before - 0.001) <= stamped <= iso_ms(after + 0.001), (stamped, before, after)


async def test_the_first_messages_of_a_new_device_keep_the_time_they_were_received(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """A Send right after the Register, without timestamps, arrives before the device's hub session exists
    (DPS and the connect take a while): it goes out stamped with when it was received, not when the session
    came up."""
    start = await log_position(rest)
    # DPS busy for a while: the session comes up well after the Send.
    status, _ = await rest.request("POST", "/emulator/faults/throttle", {"seconds": 2, "scope": "dps"})
    assert status == 200
    async with simulated(translator, "new-1", values={TEMPERATURE: 19.5}) as device:
        before = time.time()
        payload = encode(ContentFormat.SENML_JSON, [Record(TEMPERATURE, 19.75)], base_path=Path())
        message = aiocoap.Message(
            code=AioCode.POST, uri=device._uri("dp"), content_format=ContentFormat.SENML_JSON, payload=payload
        )
        response = await device._send(message)
        assert response.code == AioCode.CHANGED, response
        [event] = await telemetry_matching(
            rest, "new-1", lambda e: e["body"].get("temperature") == 19.75, after=start
        )
        stamped = event["properties"].get("iothub-creation-time-utc")
        assert stamped is not None, event
        assert iso_ms(before - 0.001) <= stamped <= iso_ms(before + 1.0), (stamped, before)


async def test_what_is_not_translated_is_said_once_per_registration(
    emulator: Emulator, rest: RestClient, translator: Translator, caplog: pytest.LogCaptureFixture
) -> None:
    """Objects without a model (a vendor's 33605, object 10) and their values: one INFO line per
    registration names them; no warning per resource, neither at registration nor when they are sent."""
    caplog.set_level(logging.INFO, logger="translator")
    values: dict[Path, Value] = {
        TEMPERATURE: 21.5,
        Path(3303, 0, 5701): "Cel",
        Path(10, 0, 0): 1,
        Path(33605, 0, 1): "x",
    }
    async with simulated(translator, "vendor-1", values=values) as device:
        await session_connected(translator, "vendor-1")
        await eventually(lambda: _observing(device, TEMPERATURE), what="the observation")
        start = await log_position(rest)
        await device.send([Path(10), Path(33605), TEMPERATURE])
        await telemetry_matching(rest, "vendor-1", lambda e: e["component"] == "temperature_0", after=start)
        assert (await device.register()).code.is_successful()

        def said() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.name.startswith("translator") and "not translated" in r.getMessage()
            ]

        async def twice() -> bool:
            return len(said()) == 2

        await eventually(twice, what="one line per registration")
        assert all("/10" in line and "/33605" in line for line in said()), said()
        noisy = [
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("translator") and r.levelno >= logging.WARNING
            and ("/10/" in r.getMessage() or "/33605/" in r.getMessage())
        ]  # fmt: skip
        assert noisy == []


async def test_resources_the_devices_read_showed_absent_are_not_observed(
    emulator: Emulator, rest: RestClient, translator: Translator, caplog: pytest.LogCaptureFixture
) -> None:
    """The Device object read at registration has no Memory Free (/3/0/10) nor Power Source Voltage (/3/0/7):
    neither Write-Attributes nor Observe is sent for them, and nothing is warned about."""
    caplog.set_level(logging.INFO, logger="translator")
    async with simulated(translator, "lean-1", strict_attributes=True, composite="unsupported") as device:
        await session_connected(translator, "lean-1")
        await eventually(lambda: _observing(device, TEMPERATURE), what="the set-up")
        for absent in ("/3/0/10", "/3/0/7"):
            assert ("PUT", absent) not in device.requests, device.requests
            assert ("GET", absent) not in device.requests, device.requests
        assert ("PUT", "/3/0/9") in device.requests  # battery level: present, attributes written
        warned = [
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("translator") and r.levelno >= logging.WARNING and "/3/0/" in r.getMessage()
        ]
        assert warned == []
