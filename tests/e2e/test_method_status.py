"""A command the device refuses answers IoT Central with the status coap/statuses.py gives its CoAP code
(RFC 8075's CoAP → HTTP mapping), end to end: the emulator's REST API → the translator → the simulator."""

from __future__ import annotations

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import session_connected, simulated
from translator.lwm2m import Path
from translator.serve import Translator

REFUSALS = {
    "reboot": (Path(3, 0, 4), 0x81, 403),  # 4.01 Unauthorized → 403
    "factoryReset": (Path(3, 0, 5), 0xA1, 501),  # 5.01 Not Implemented → 501
    "resetErrorCode": (Path(3, 0, 12), 0xA3, 503),  # 5.03 Service Unavailable → 503
}


async def test_a_refused_command_answers_the_status_of_the_devices_code(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    refuse = {path: code for path, code, _ in REFUSALS.values()}
    async with simulated(translator, "refuser-1", refuse_executes=refuse) as device:
        await session_connected(translator, "refuser-1")
        for command, (_, _, expected) in REFUSALS.items():
            status, body = await rest.request(
                "POST", f"/api/devices/refuser-1/components/device/commands/{command}", {}
            )
            assert status == 201, body
            assert body["responseCode"] == expected, (command, body)
            assert "refused by the device" in body["response"]["error"], body
        assert device.executed == []
