"""How the two real LwM2M clients behave (CLIENTS.md) as simulator options, and waits on a simulated device
that several e2e modules share."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import eventually
from translator.coap.simulator import SimulatedDevice, default_values
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator

TEMPERATURE = Lwm2mPath(3303, 0, 5700)
REBOOT = Lwm2mPath(3, 0, 4)
ON = Lwm2mPath(3311, 0, 5850)
DIMMER = Lwm2mPath(3311, 0, 5851)

# How the two real clients behave (CLIENTS.md); both notify NON, as they do by default.
CLIENT_11: dict[str, Any] = {"version": "1.1", "composite": "silent", "stop_after_update_not_found": True}
CLIENT_12: dict[str, Any] = {"version": "1.2", "cancel_observation_on_rst": True}


def temperature_event(value: float) -> Any:
    return lambda event: event["component"] == "temperature_0" and event["body"].get("temperature") == value


async def set_up_done(translator: Translator, device: SimulatedDevice) -> None:
    """Its set-up (Reads, Write-Attributes, every Observe) completed, and the store knows it."""

    async def done() -> bool:
        assert translator.coap is not None
        snapshot = translator.coap.snapshot(device.endpoint)
        return snapshot is not None and snapshot.settled and bool(device.observed)

    await eventually(done, what=f"{device.endpoint} set up")


def light_values() -> dict[Lwm2mPath, Any]:
    values = default_values()
    values.update({ON: False, DIMMER: 50, Lwm2mPath(3311, 0, 5706): "white"})
    return values
