"""Observation cost and rate follow the codec (issue 13 §3), through the simulator acting as the LwM2M 1.2
client, against the real translator and emulator.

The 1.2 client notifies every member of a composite observation whenever any member fires, so one
composite over all telemetry makes every value travel at the rate of the fastest; IoT Central bills and
throttles by message (https://azure.microsoft.com/pricing/details/iot-central/: a monthly allowance of
messages per device)."""

from __future__ import annotations

import asyncio
from typing import Any

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    STEP,
    eventually,
    log_position,
    session_connected,
    simulated,
    telemetry_matching,
)
from translator.coap.simulator import SimulatedDevice
from translator.lwm2m import Path, Value
from translator.serve import Translator

TEMPERATURE = Path(3303, 0, 5700)  # codec: pmin 10, pmax 300, st 0.5
MINIMUM = Path(3303, 0, 5601)  # codec: no attributes
MAXIMUM = Path(3303, 0, 5602)
INSTANCE_READS = {("GET", "/3/0"), ("GET", "/3303/0"), ("GET", "/6/0")}


def _observing(device: SimulatedDevice, *paths: Path) -> bool:
    observed = {path for group in device.observed for path in group}
    return all(path in observed for path in paths)


async def _changed(device: SimulatedDevice, values: dict[Path, Value]) -> None:
    """Change `values`, then wait until the device has rendered its notification: each change travels in
    a notification of its own, not merged into the next one's render."""
    served = len(device.requests)
    for path, value in values.items():
        device.set_value(path, value)

    async def notified() -> bool:
        return len(device.requests) > served

    await eventually(notified, what="the notification")


async def _all_telemetry(
    rest: RestClient, device_id: str, until: Any, after: int = 0
) -> list[dict[str, Any]]:
    """The device's telemetry after `after` up to and including the first event satisfying `until`."""
    events: list[dict[str, Any]] = []
    last = after
    async with asyncio.timeout(STEP):
        while not events or not until(events[-1]):
            log = await rest.get(f"/emulator/telemetry?deviceId={device_id}&after={last}&wait=1")
            for event in log["value"]:
                last = event["sequence"]
                events.append(event)
                if until(event):
                    return events
    return events


async def test_a_composite_member_does_not_drag_a_slower_value_along(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """Min/max measured (no attributes) change with every reading; the temperature's pmin of 10 s holds
    while they do, and each notification forwards only what changed."""
    async with simulated(translator, "rate-1", version="1.2", attributes=True) as device:
        await session_connected(translator, "rate-1")
        await eventually(
            lambda: asyncio.sleep(0, _observing(device, TEMPERATURE, MINIMUM, MAXIMUM)),
            what="the observations",
        )
        start = await log_position(rest)
        low = float(device.values[MINIMUM])  # type: ignore[arg-type]
        for step in range(1, 5):  # falling temperature: a new minimum every reading
            await _changed(device, {TEMPERATURE: low - step, MINIMUM: low - step})
        events = await _all_telemetry(
            rest, "rate-1", lambda e: e["body"].get("minMeasured") == low - 4, after=start
        )
        assert [e["body"] for e in events] == [{"minMeasured": low - step} for step in range(1, 5)]
        # Before: one composite over 5601, 5602 and 5700: each new minimum carried the temperature (pmin
        # defeated) and the unchanged maximum along.


async def test_a_repeated_value_is_not_forwarded_again(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "repeat-1", version="1.1", composite="unsupported") as device:
        await session_connected(translator, "repeat-1")
        await eventually(lambda: asyncio.sleep(0, _observing(device, TEMPERATURE)), what="the observation")
        # The set-up's Read delivers 21.5 once, and may land after the observation is in place: start after
        # it, and look at temperatures only (the set-up's other values may land later still).
        [initial] = await telemetry_matching(rest, "repeat-1", lambda e: e["body"].get("temperature") == 21.5)
        for value in (22.0, 22.0, 22.0, 23.0):  # the simulator (no attributes) notifies each of them
            await _changed(device, {TEMPERATURE: value})
        events = await _all_telemetry(
            rest, "repeat-1", lambda e: e["body"].get("temperature") == 23.0, initial["sequence"]
        )
        assert [e["body"] for e in events if "temperature" in e["body"]] == [
            {"temperature": 22.0},
            {"temperature": 23.0},
        ]


async def test_registration_sends_each_value_once(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """The set-up's Read of /3303/0 delivers the first temperature; the observation's first answer,
    milliseconds later, carries the same value and must not send it again."""
    async with simulated(translator, "once-1", version="1.1") as device:
        await session_connected(translator, "once-1")
        await eventually(lambda: asyncio.sleep(0, _observing(device, TEMPERATURE)), what="the observation")
        device.set_value(TEMPERATURE, 30.0)  # a marker: everything before it has been forwarded
        events = await _all_telemetry(rest, "once-1", lambda e: e["body"].get("temperature") == 30.0)
        temperatures = [e["body"]["temperature"] for e in events if "temperature" in e["body"]]
        assert temperatures == [21.5, 30.0]
        minimums = [e["body"]["minMeasured"] for e in events if "minMeasured" in e["body"]]
        assert minimums == [20.0]


async def test_a_queue_mode_wake_with_a_full_register_resumes(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """The 1.2 client in queue mode wakes with a full Register (its observations are gone): the translator
    observes again, but reads nothing and writes no attribute (the device keeps its own)."""
    async with simulated(translator, "wake-1", version="1.2", queue_mode=True) as device:
        await session_connected(translator, "wake-1")
        await eventually(
            lambda: asyncio.sleep(0, _observing(device, TEMPERATURE, MINIMUM)), what="the set-up"
        )
        assert INSTANCE_READS & set(device.requests)  # the first registration read the properties
        assert ("PUT", "/3303/0/5700") in device.requests  # … and wrote the codec's attributes
        device.attributes[TEMPERATURE]["pmin"] = "30"  # the device changes its own attribute
        await device.sleep()
        device.requests.clear()
        response = await device.wake(register=True)
        assert response.code.is_successful()
        await eventually(
            lambda: asyncio.sleep(0, _observing(device, TEMPERATURE, MINIMUM)), what="observations again"
        )
        start = await log_position(rest)
        device.set_value(TEMPERATURE, 35.0)  # the device is awake; its observation works again
        await telemetry_matching(rest, "wake-1", lambda e: e["body"].get("temperature") == 35.0, after=start)
        assert not INSTANCE_READS & set(device.requests), device.requests
        assert not [r for r in device.requests if r[0] == "PUT"], device.requests
        assert device.attributes[TEMPERATURE]["pmin"] == "30"
