"""Writable properties and commands tell the truth (issue 13 §4, §5): a command answered 504 is not run again
afterwards, a refused write is acknowledged with what the device holds, settled properties are not written
again, and a device's lifetime follows what the translator wrote to it."""

from __future__ import annotations

import asyncio
from typing import Any

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import eventually, properties, session_connected, simulated
from translator.coap.simulator import AnswerlessClient, default_values
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


ON = Path(3311, 0, 5850)
DIMMER = Path(3311, 0, 5851)


def light_values() -> dict[Path, Any]:
    values = default_values()
    values.update({ON: False, DIMMER: 50, Path(3311, 0, 5706): "white"})
    return values


async def _metadata(rest: RestClient, device_id: str, name: str) -> dict[str, Any]:
    view = await properties(rest, device_id, "lightControl_0")
    return dict(view.get("$metadata", {}).get(name, {}))


async def _acknowledged(rest: RestClient, device_id: str, name: str, code: int) -> dict[str, Any]:
    meta = await _metadata(rest, device_id, name)
    assert meta.get("ackCode") == code and meta.get("ackVersion") == meta.get("desiredVersion"), meta
    return meta


async def _desire(rest: RestClient, device_id: str, values: dict[str, Any]) -> None:
    path = f"/api/devices/{device_id}/components/lightControl_0/properties"
    status, _ = await rest.request("PATCH", path, values)
    assert status == 202


async def test_a_refused_write_is_acknowledged_with_the_value_the_device_holds(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """IoT Plug and Play: for 4xx/5xx the acknowledgement's value is the one the device actually uses. A
    4.xx refusal is ac 400, a 5.xx failure ac 500."""
    refusals = {DIMMER: 0x80, ON: 0xA0}  # 4.00 for the dimmer, 5.00 for on/off
    async with simulated(translator, "picky-1", values=light_values(), refuse_writes=refusals) as device:
        await session_connected(translator, "picky-1")

        async def reported() -> bool:
            return (await properties(rest, "picky-1", "lightControl_0")).get("dimmer") == 50

        await eventually(reported, what="the dimmer reported")
        await _desire(rest, "picky-1", {"dimmer": 70, "on": True})
        dimmer = await eventually(lambda: _acknowledged(rest, "picky-1", "dimmer", 400), what="dimmer 400")
        on = await eventually(lambda: _acknowledged(rest, "picky-1", "on", 500), what="on 500")
        view = await properties(rest, "picky-1", "lightControl_0")
        assert view["dimmer"] == 50, (view, dimmer)
        assert view["on"] is False, (view, on)
        assert device.values[DIMMER] == 50 and device.values[ON] is False


COLOUR = Path(3311, 0, 5706)


async def test_a_settled_property_stays_settled_across_re_registration_and_reconnect(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """The device re-reports its own values at every registration: a value acknowledged 200 stays 200 at
    the same version (not turned into a 203), and an unrelated hub reconnect writes nothing again."""
    async with simulated(translator, "light-9", values=light_values()) as device:
        await session_connected(translator, "light-9")

        async def reported() -> bool:
            return (await properties(rest, "light-9", "lightControl_0")).get("dimmer") == 50

        await eventually(reported, what="the dimmer reported")
        await _desire(rest, "light-9", {"dimmer": 70})
        await eventually(lambda: _acknowledged(rest, "light-9", "dimmer", 200), what="dimmer 200")
        writes = device.requests.count(("PUT", str(DIMMER)))
        assert writes == 1

        # The device registers again with a colour changed locally: its instance is read and reported.
        device.values[COLOUR] = "red"
        assert (await device.register()).code.is_successful()

        async def colour_reported() -> bool:
            view = await properties(rest, "light-9", "lightControl_0")
            colour = view.get("colour")
            return colour == "red" or (isinstance(colour, dict) and colour.get("value") == "red")

        await eventually(colour_reported, what="the re-registration's report")
        meta = await _acknowledged(rest, "light-9", "dimmer", 200)
        assert meta["ackDescription"] == "completed", meta

        # An unrelated hub reconnect: the twin is read again and nothing is pending.
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 1})
        assert status == 200
        await eventually(lambda: _reconciled(translator, "light-9"), what="the reconnect's reconciliation")
        assert device.requests.count(("PUT", str(DIMMER))) == writes, device.requests
        await _acknowledged(rest, "light-9", "dimmer", 200)


async def _reconciled(translator: Translator, device_id: str) -> bool:
    """Connected a second time, and the after-connect work (twin GET, reconciliation) is over."""
    assert translator.pool is not None
    session = translator.pool.get(device_id)
    if session is None or not session.is_connected or session.metrics.connects < 2:
        return False
    name = f"session-{device_id}-after-connect"
    return not any(task.get_name() == name for task in asyncio.all_tasks())
