"""A hundred simulated devices register and send at once: every one is provisioned, connected and lands."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import STEP, coap_address, eventually, log_position, send_at
from translator.coap.simulator import SimulatedDevice, default_values
from translator.lwm2m import Path
from translator.serve import Translator

DEVICES = 100
TEMPERATURE = Path(3303, 0, 5700)


async def test_hundred_devices_at_once(emulator: Emulator, rest: RestClient, translator: Translator) -> None:
    start = await log_position(rest)
    base = float(int(time.time()) - 60)
    fleet = [
        SimulatedDevice(
            f"fleet-{i:03d}", coap_address(translator), values={**default_values(), TEMPERATURE: 20.0 + i / 4}
        )
        for i in range(DEVICES)
    ]
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(device.start() for device in fleet))

            async def one(index: int, device: SimulatedDevice) -> None:
                response = await device.register()
                assert response.code.is_successful(), response
                await send_at(device, [(TEMPERATURE, 100.0 + index, base + index / 4)])

            await asyncio.gather(*(one(i, device) for i, device in enumerate(fleet)))

        landed: dict[str, dict[str, Any]] = {}

        async def all_landed() -> bool:
            log = await rest.get(f"/emulator/telemetry?after={start}")
            for event in log["value"]:
                # The Send (values read at registration may carry their receive time too, if outboxed).
                if event["body"].get("temperature", 0) >= 100:
                    landed[event["deviceId"]] = event
            return len(landed) == DEVICES

        await eventually(all_landed, timeout=40, interval=0.5, what="telemetry of every device")
        for i in range(DEVICES):
            event = landed[f"fleet-{i:03d}"]
            assert event["component"] == "temperature_0"
            assert event["body"] == {"temperature": 100.0 + i}
        assert translator.pool is not None
        figures = translator.pool.metrics()
        assert figures["sessions:connected"] == DEVICES
        assert figures["dps_registrations"] == DEVICES
        devices = await rest.get("/api/devices")
        assert (
            sum(1 for d in devices["value"] if d["id"].startswith("fleet-") and d["provisioned"]) == DEVICES
        )
    finally:
        async with asyncio.timeout(STEP):
            await asyncio.gather(*(device.close() for device in fleet))


async def test_simulated_devices_bind_ports_of_their_own() -> None:
    """The fleet above needs a hundred distinct ports. With aiocoap's SO_REUSEPORT (off in tests/conftest.py)
    Linux may give a port-0 bind a port another socket of the same user holds, and the two share it."""
    device = SimulatedDevice("own-port", ("127.0.0.1", 9))
    await device.start()
    try:
        interface = device._context.request_interfaces[0].token_interface.message_interface
        sock = interface.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        await device.close()
