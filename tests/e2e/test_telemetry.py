"""Uplink end to end: a simulated LwM2M client → the translator over UDP → the emulator over TLS.

Observe notifications and LwM2M Send land as telemetry with the codec's names and components, the device's own
timestamps travel as `iothub-creation-time-utc`, and the device object lands as reported properties."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    eventually,
    iso_ms,
    log_position,
    send_at,
    session_connected,
    simulated,
    telemetry_matching,
)
from translator.coap.simulator import SimulatedDevice
from translator.lwm2m import ContentFormat, Path, Value
from translator.serve import Translator

TEMPERATURE = Path(3303, 0, 5700)


@pytest.mark.parametrize(
    ("version", "composite"), [("1.1", "ok"), ("1.1", "unsupported"), ("1.1", "silent"), ("1.0", "ok")]
)
async def test_observe_notifications_land_as_component_telemetry(
    emulator: Emulator, rest: RestClient, translator: Translator, version: str, composite: str
) -> None:
    """Observe-Composite where the device has it; single observations where it refuses it (4.05), where,
    like Wakaama, it acknowledges the FETCH and never answers, and on LwM2M 1.0 (no composite at all)."""
    async with simulated(translator, "obs-1", version=version, composite=composite) as device:
        await session_connected(translator, "obs-1")
        await eventually(lambda: _observing(device, TEMPERATURE), what="the observation of /3303/0/5700")
        # The value read at registration goes out once, and may land after the observation is in place:
        # wait for it, so that the first change below is not mistaken for it.
        [initial] = await telemetry_matching(rest, "obs-1", lambda e: e["component"] == "temperature_0")
        start = initial["sequence"]
        for value in (22.25, 23.5, 24.75):
            device.set_value(TEMPERATURE, value)
            [event] = await telemetry_matching(
                rest, "obs-1", lambda e: e["component"] == "temperature_0", after=start
            )
            start = event["sequence"]
            assert event["body"]["temperature"] == value
            assert event["systemProperties"]["contentType"] == "application/json"
            assert event["systemProperties"]["component"] == "temperature_0"
        last = await rest.get("/api/devices/obs-1/components/temperature_0/telemetry/temperature")
        assert last["value"] == 24.75
        assert (("FETCH", "/") in device.requests) == (version != "1.0")  # Observe-Composite tried first
        if composite != "ok" or version == "1.0":
            assert ("GET", "/3303/0/5700") in device.requests  # fell back to a single Observe
        device_view = await rest.get("/api/devices/obs-1")
        assert device_view["provisioned"] is True
        # The translator's model id was announced; no template is published here, so it stays Unassigned.
        assert emulator.application.devices["obs-1"].model_id.startswith("dtmi:iotcTranslator:")
        assert "template" not in device_view


def _stamped_at(stamps: set[str]) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event["properties"].get("iothub-creation-time-utc") in stamps


async def _observing(device: SimulatedDevice, path: Path) -> bool:
    observed = device.observed
    return any(path in paths for paths in observed)


async def test_send_lands_with_the_device_timestamps(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "send-1") as device:
        await session_connected(translator, "send-1")
        start = await log_position(rest)
        # Three historical readings in one Send (SenML JSON), an hour old, a second apart, then one in SenML
        # CBOR: each reading becomes its own message stamped with the device's time, not the arrival time.
        base = float(int(time.time()) - 3600) + 0.25
        readings = [(TEMPERATURE, 20.0 + i, base + i) for i in range(3)]
        await send_at(device, readings)
        await send_at(device, [(TEMPERATURE, 30.5, base + 10.5)], content_format=ContentFormat.SENML_CBOR)
        # Stamped with these times only: the set-up's reading, outboxed under load, carries its receive time.
        stamps = {iso_ms(t) for t in (base, base + 1, base + 2, base + 10.5)}
        events = await telemetry_matching(rest, "send-1", _stamped_at(stamps), 4, after=start)
        assert [e["body"] for e in events] == [
            {"temperature": 20.0},
            {"temperature": 21.0},
            {"temperature": 22.0},
            {"temperature": 30.5},
        ]
        assert [e["component"] for e in events] == ["temperature_0"] * 4
        assert [e["properties"]["iothub-creation-time-utc"] for e in events] == [
            iso_ms(base),
            iso_ms(base + 1),
            iso_ms(base + 2),
            iso_ms(base + 10.5),
        ]
        # IoT Central's last value keeps the device's timestamp too.
        last = await rest.get("/api/devices/send-1/components/temperature_0/telemetry/temperature")
        assert last == {"timestamp": iso_ms(base + 10.5), "value": 30.5}


async def test_device_object_lands_as_reported_properties(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    values: dict[Path, Value] = {
        Path(3, 0, 0): "Acme Sensors",
        Path(3, 0, 1): "TS-100",
        Path(3, 0, 2): "SN-4242",
        Path(3, 0, 3): "2.7.1",
        Path(3, 0, 17): "thermometer",
        Path(3, 0, 18): "rev-B",
        Path(3, 0, 19): "sw-9",
        Path(3, 0, 16): "U",
        Path(3303, 0, 5700): 19.5,
        Path(3303, 0, 5701): "Cel",
    }
    async with simulated(translator, "info-1", values=values):

        async def reported() -> dict[str, object]:
            view = await rest.get("/api/devices/info-1/components/device/properties")
            assert view.get("firmwareVersion") == "2.7.1", view
            return dict(view)

        view = await eventually(reported, what="the device information")
        assert view["manufacturer"] == "Acme Sensors"
        assert view["model"] == "TS-100"
        assert view["serialNumber"] == "SN-4242"
        assert view["deviceType"] == "thermometer"
        assert view["hardwareVersion"] == "rev-B"
        assert view["softwareVersion"] == "sw-9"
        assert "__t" not in view  # the twin's component marker is not part of IoT Central's REST view
        sensor = await rest.get("/api/devices/info-1/components/temperature_0/properties")
        assert sensor["sensorUnits"] == "Cel"


async def test_expiry_and_deregistration_close_the_session(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    assert translator.pool is not None
    pool = translator.pool

    def gone(device_id: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return pool.get(device_id) is None and device_id not in emulator.hub.sessions

        return check

    # A registration left to expire (lifetime 2 s, no grace in these tests) ends the device's life.
    async with simulated(translator, "exp-1", lifetime=2):
        await session_connected(translator, "exp-1")
        await eventually(gone("exp-1"), what="the expired device's session to close")
        assert translator.bridge is not None and "exp-1" not in translator.bridge.lives

    # De-registered while its session is still being set up: nothing is left behind. The session is opened
    # after the de-registration may already have been handled; "gone" means something only once it was.
    opened = pool.metrics().get("sessions_opened", 0)
    async with simulated(translator, "dereg-1") as device:
        await device.deregister()

        async def set_up() -> bool:
            return pool.metrics().get("sessions_opened", 0) > opened

        await eventually(set_up, what="the de-registered device's session to be opened")
        await eventually(gone("dereg-1"), what="the de-registered device's session to close")
