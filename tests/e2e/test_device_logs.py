"""Every log line about a device carries its device id as a field (README: grep `device=<id>` finds a
device's whole life), whichever layer wrote it: the LwM2M server, the bridge, DPS, the hub session."""

from __future__ import annotations

import logging

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import eventually, session_connected, simulated, telemetry
from translator.lwm2m import Path
from translator.ops.logs import DEVICE_FIELD
from translator.serve import Translator

TEMPERATURE = Path(3303, 0, 5700)
DEVICE = "logged-life-1"  # endpoint and device id alike, and in no other test's lines


async def test_each_line_of_a_device_life_carries_its_device_id(
    emulator: Emulator, rest: RestClient, translator: Translator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="translator")
    async with simulated(translator, DEVICE, values={TEMPERATURE: 21.5}) as device:
        await session_connected(translator, DEVICE)
        response = await device.send([TEMPERATURE])
        assert response.code.is_successful(), response
        await telemetry(rest, DEVICE, 1)
        await device.deregister()

        async def closed() -> bool:
            assert translator.pool is not None
            return translator.pool.get(DEVICE) is None

        await eventually(closed, what="the session closed after the de-registration")

    # The translator's own lines: not the simulated device's (translator.coap.simulator) nor aiocoap's.
    ours = [
        r
        for r in caplog.records
        if r.name.startswith("translator.")
        and not r.name.startswith(("translator.coap.simulator", "translator.coap.aiocoap"))
    ]
    about = [r for r in ours if DEVICE in r.getMessage() or getattr(r, DEVICE_FIELD, None) == DEVICE]
    unnamed = [f"{r.name}: {r.getMessage()}" for r in about if getattr(r, DEVICE_FIELD, None) != DEVICE]
    assert not unnamed, "lines about the device without its device id:\n" + "\n".join(unnamed)
    # The life was logged by every layer it crossed (else the check above proves nothing).
    layers = {r.name.split(".")[1] for r in about}
    assert {"coap", "iotc", "bridge"} <= layers, layers
