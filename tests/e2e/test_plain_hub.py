"""README "Connect a real IoT Central application", step 4: plain IoT Hub. Devices imported with a connection
string go straight to their hub (no DPS); with `iotc.hub_only` no ID scope or group key is needed, and
`serve` does not start its built-in emulator in the hub's place (it did: without an ID scope and a key it
took itself for a demo and dialled its own emulator, so such a device never reached its hub)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from emulator.app import Emulator
from emulator.sas import derive_device_key
from emulator.state import Device
from tests.conftest import RestClient
from tests.e2e.conftest import (
    log_position,
    running_translator,
    send_at,
    session_connected,
    simulated,
    telemetry_matching,
    translator_settings,
)
from translator import cli
from translator.lwm2m import Path as Lwm2mPath

TEMPERATURE = Lwm2mPath(3303, 0, 5700)
HUB = "hub-a.azure-devices.net"


async def test_connection_string_devices_reach_their_hub_without_an_id_scope(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    # The hub's device registry holds the device (IoT Hub: created there, not through DPS).
    emulator.application.devices["plain-1"] = Device("plain-1", provisioned=True, assigned_hub=HUB)
    key = derive_device_key(emulator.application.group_primary_key, "plain-1")
    settings = translator_settings(emulator, tmp_path / "translator")
    settings = dataclasses.replace(
        settings, iotc=dataclasses.replace(settings.iotc, id_scope="", group_key="", hub_only=True)
    )
    table = tmp_path / "devices.csv"
    table.write_text(
        f"deviceId,endpoint,connectionString\nplain-1,plain-ep,HostName={HUB};DeviceId=plain-1;SharedAccessKey={key}\n"
    )
    argv = ["devices", "import", str(table), "--state-dir", str(settings.state_dir)]
    assert await asyncio.to_thread(cli.main, argv) == 0

    async with running_translator(settings) as translator:
        assert translator.emulator is None
        assert "IoT Hub:" in translator.how_to_try()
        start = await log_position(rest)
        async with simulated(translator, "plain-ep") as device:
            await session_connected(translator, "plain-1")
            await send_at(device, [(TEMPERATURE, 24.5, float(int(time.time())))])
            await telemetry_matching(
                rest, "plain-1", lambda event: event["body"].get("temperature") == 24.5, after=start
            )
        assert translator.pool is not None
        dps = translator.pool.pacing.dps
        assert dps is not None and dps.figures().granted == 0  # straight to the hub
