"""Writable properties and commands tell the truth (issue 13 §4, §5): a command answered 504 is not run again
afterwards, a refused write is acknowledged with what the device holds, settled properties are not written
again, and a device's lifetime follows what the translator wrote to it."""

from __future__ import annotations

import asyncio

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import eventually, session_connected, simulated
from translator.coap.simulator import AnswerlessClient
from translator.lwm2m import Path
from translator.serve import Translator

REBOOT = Path(3, 0, 4)


async def test_a_command_answered_504_is_not_retransmitted_afterwards(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """A client without duplicate detection runs every retransmitted Execute again: once the command was
    answered 504, the exchange must be over (no retransmission reaches the device)."""
    async with simulated(translator, "lossy-1") as device:
        await session_connected(translator, "lossy-1")

        async def observed() -> bool:
            return bool(device.observed)

        await eventually(observed, what="set-up to finish")
        port = device.port
        await device.close()
    client = await AnswerlessClient.bind(("127.0.0.1", port))
    try:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        status, body = await rest.request(
            "POST", "/api/devices/lossy-1/components/device/commands/reboot", {}
        )
        assert status == 201 and body["responseCode"] == 504, body
        executed = client.executions(REBOOT)
        assert executed >= 1
        # CoAP retransmits a CON at 2-3 s, then 6-9 s, 14-21 s after the first send (RFC 7252 4.8): by 10 s
        # the second retransmission would have arrived had the exchange lived on past the 504.
        await asyncio.sleep(max(0.0, sent + 10.0 - loop.time()))
        assert client.executions(REBOOT) == executed, client.received
    finally:
        client.close()
