"""Devices of the session tests against the emulator: a model, a spec with the group-derived key, the
telemetry log."""

from __future__ import annotations

import asyncio
from typing import Any

from emulator.app import Emulator
from tests.conftest import RestClient
from translator.iotc.client.credentials import SymmetricKey
from translator.iotc.client.pool import DeviceSpec
from translator.iotc.client.session import SessionCallbacks

MODEL = "dtmi:example:Thermostat;1"


STEP = 20.0


def spec(emulator: Emulator, device_id: str, callbacks: SessionCallbacks | None = None) -> DeviceSpec:
    key = SymmetricKey.from_group(emulator.application.group_primary_key, device_id)
    return DeviceSpec(device_id, key, MODEL, callbacks or SessionCallbacks())


async def telemetry_of(rest: RestClient, device_id: str, count: int, after: int = 0) -> list[dict[str, Any]]:
    """Wait until `count` messages of the device are in the emulator's telemetry log."""
    async with asyncio.timeout(STEP):
        while True:
            log = await rest.get(f"/emulator/telemetry?deviceId={device_id}&after={after}&wait=1")
            if len(log["value"]) >= count:
                return list(log["value"])
