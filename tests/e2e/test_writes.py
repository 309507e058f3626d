"""Writable properties and commands tell the truth (issue 13 §4, §5): a command answered 504 is not run again
afterwards, a refused write is acknowledged with what the device holds, settled properties are not written
again, and a device's lifetime follows what the translator wrote to it."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    COAP_CLIENT,
    coap_address,
    eventually,
    free_udp_port,
    properties,
    session_connected,
    simulated,
)
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

        # The device registers again, with a second temperature sensor and a colour changed locally: a new
        # object list gets the full set-up, so its instances are read and reported (the dimmer with them).
        device.values[COLOUR] = "red"
        device.values.update({Path(3303, 1, 5700): 19.0, Path(3303, 1, 5701): "Cel"})
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


SERVER_LIFETIME = Path(1, 0, 1)


def server_values(lifetime: int) -> dict[Path, Any]:
    values = default_values()
    values.update({Path(1, 0, 0): 1, SERVER_LIFETIME: lifetime, Path(1, 0, 7): "U"})
    return values


async def test_the_lifetime_written_to_the_device_keeps_its_registration(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """The 1.1 client obeys a lifetime written to /1/0/1 but never sends lt= in its Updates: the
    registration must live by the written lifetime, not expire under the device at the old one."""
    async with simulated(translator, "obedient-1", values=server_values(2), lifetime=2) as device:
        assert translator.coap is not None
        registration = translator.coap.registration("obedient-1")
        assert registration is not None and registration.lifetime == 2
        updater = asyncio.create_task(device.stay_registered())
        try:
            await session_connected(translator, "obedient-1")
            path = "/api/devices/obedient-1/components/lwm2mServer_0/properties"
            status, _ = await rest.request("PATCH", path, {"lifetime": 30})
            assert status == 202

            async def written() -> bool:
                return device.values[SERVER_LIFETIME] == 30

            await eventually(written, what="the lifetime written")
            loop = asyncio.get_running_loop()
            until = loop.time() + 5.0  # past the old lifetime (2 s, grace 0) by far; the device waits 15 s

            async def kept() -> bool:
                current = translator.coap.registration("obedient-1") if translator.coap else None
                assert current is not None and current.reg_id == registration.reg_id, "registration expired"
                return loop.time() >= until

            await eventually(kept, what="five seconds of registration")
            current = translator.coap.registration("obedient-1")
            assert current is not None and current.lifetime == 30
        finally:
            updater.cancel()


async def test_a_lifetime_the_server_would_refuse_is_never_written(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "obedient-2", values=server_values(300)) as device:
        await session_connected(translator, "obedient-2")
        path = "/api/devices/obedient-2/components/lwm2mServer_0/properties"
        status, _ = await rest.request("PATCH", path, {"lifetime": 400_000_000})
        assert status == 202

        async def refused() -> dict[str, Any]:
            view = await properties(rest, "obedient-2", "lwm2mServer_0")
            meta = dict(view.get("$metadata", {}).get("lifetime", {}))
            assert meta.get("ackCode") == 400 and meta.get("ackVersion") == meta.get("desiredVersion"), meta
            return view

        view = await eventually(refused, what="the refusal")
        assert view["lifetime"] == 300
        assert ("PUT", str(SERVER_LIFETIME)) not in device.requests
        assert device.values[SERVER_LIFETIME] == 300


@pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap3-bin (coap-client-notls) not installed")
async def test_lifetime_zero_is_infinite_not_a_bad_request(translator: Translator) -> None:
    """lt=0 is "infinite" in the OMA Server object: libcoap's client registers with it and gets 2.01."""
    assert COAP_CLIENT is not None
    host, port = coap_address(translator)
    local = str(free_udp_port())
    done = await asyncio.to_thread(
        subprocess.run,
        [COAP_CLIENT, "-B", "15", "-p", local, "-m", "post", "-t", "40", "-e", "</3303/0>",
         f"coap://{host}:{port}/rd?ep=forever-1&lt=0&lwm2m=1.1"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "4.00" not in done.stdout + done.stderr, done
    assert translator.coap is not None
    registration = translator.coap.registration("forever-1")
    assert registration is not None and registration.lifetime == 0
