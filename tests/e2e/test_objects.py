"""What a device has, and what is done with it (issue 13 §5): an object instance announced in an Update gets
its component; telemetry keeps the time it was received; what is not translated is said once."""

from __future__ import annotations

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import eventually, log_position, session_connected, simulated, telemetry_matching
from translator.coap.simulator import SimulatedDevice
from translator.lwm2m import Path
from translator.serve import Translator

SECOND = Path(3303, 1, 5700)


async def _observing(device: SimulatedDevice, path: Path) -> bool:
    return any(any(path.startswith(p) for p in paths) for paths in device.observed)


async def test_an_instance_announced_in_an_update_gets_its_component(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "grow-1", composite="unsupported") as device:
        await session_connected(translator, "grow-1")
        await eventually(lambda: _observing(device, Path(3303, 0, 5700)), what="the first sensor observed")
        # A second temperature sensor appears (created locally): the device says so in an Update.
        device.values.update({SECOND: 30.5, Path(3303, 1, 5701): "Cel"})
        response = await device.update(with_objects=True)
        assert response.code.is_successful(), response
        await eventually(lambda: _observing(device, SECOND), what="the new instance observed")
        assert ("GET", "/3303/1") in device.requests  # its properties were read
        start = await log_position(rest)
        device.set_value(SECOND, 31.25)
        [event] = await telemetry_matching(
            rest, "grow-1", lambda e: e["component"] == "temperature_1", after=start
        )
        assert event["body"]["temperature"] == 31.25
