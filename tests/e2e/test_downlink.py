"""Downlink end to end: IoT Central (the emulator's REST API) → the translator → the simulated LwM2M client.

Writable properties become LwM2M Writes and are acknowledged (ac 200 / 400); commands become Executes and
their answers come back as method responses; an unknown command is a 404; a device that never answers, or
sleeps past the deadline, gets an honest 504; queue-mode devices get what waited for them when they wake;
offline (queued, cloud-to-device) commands reach the device when it can take them."""

from __future__ import annotations

import asyncio
from typing import Any

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.clients import DIMMER, ON, REBOOT, light_values
from tests.e2e.conftest import STEP, eventually, properties, session_connected, simulated
from translator.coap.queuemode import Presence
from translator.lwm2m import Path
from translator.serve import Translator


async def _metadata(rest: RestClient, device_id: str, component: str, name: str) -> dict[str, Any]:
    view = await properties(rest, device_id, component)
    return dict(view.get("$metadata", {}).get(name, {}))


async def test_writable_property_round_trip_with_acknowledgement(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "light-1", values=light_values()) as device:
        await session_connected(translator, "light-1")

        async def reported_dimmer() -> bool:
            return (await properties(rest, "light-1", "lightControl_0")).get("dimmer") == 50

        await eventually(reported_dimmer, what="the dimmer reported")
        status, _ = await rest.request(
            "PATCH", "/api/devices/light-1/components/lightControl_0/properties", {"dimmer": 70, "on": True}
        )
        assert status == 202

        async def acknowledged(name: str, code: int) -> dict[str, Any]:
            meta = await _metadata(rest, "light-1", "lightControl_0", name)
            assert meta.get("ackCode") == code and meta.get("ackVersion") == meta.get("desiredVersion"), meta
            return meta

        await eventually(lambda: acknowledged("dimmer", 200), what="dimmer ack 200")
        await eventually(lambda: acknowledged("on", 200), what="on ack 200")
        assert device.values[DIMMER] == 70
        assert device.values[ON] is True
        assert ("PUT", "/3311/0/5851") in device.requests
        view = await properties(rest, "light-1", "lightControl_0")
        assert view["dimmer"] == 70 and view["on"] is True

        # Out of the model's range 0..100: never written, acknowledged 400 with the reason.
        writes = device.requests.count(("PUT", "/3311/0/5851"))
        status, _ = await rest.request(
            "PATCH", "/api/devices/light-1/components/lightControl_0/properties", {"dimmer": 150}
        )
        assert status == 202
        meta = await eventually(lambda: acknowledged("dimmer", 400), what="dimmer ack 400")
        assert "range" in meta["ackDescription"]
        assert device.values[DIMMER] == 70
        assert device.requests.count(("PUT", "/3311/0/5851")) == writes


async def test_command_executes_on_the_device_and_answers(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "cmd-1") as device:
        await session_connected(translator, "cmd-1")
        status, body = await rest.request(
            "POST", "/api/devices/cmd-1/components/device/commands/reboot", {"request": None}
        )
        assert status == 201, body
        assert body["responseCode"] == 200, body
        assert [path for path, _ in device.executed] == [REBOOT]

        # A read command answers with the device's values.
        status, body = await rest.request(
            "POST", "/api/devices/cmd-1/components/device/commands/readIdentity", {}
        )
        assert status == 201 and body["responseCode"] == 200, body
        assert body["response"]["manufacturer"] == "iotc-translator"
        assert body["response"]["serialNumber"] == "SIM-0001"

        # A command the template does not have: 404 from the translator, nothing executed.
        status, body = await rest.request(
            "POST", "/api/devices/cmd-1/components/device/commands/selfDestruct", {}
        )
        assert status == 201, body
        assert body["responseCode"] == 404, body
        status, body = await rest.request("POST", "/api/devices/cmd-1/commands/nothing", {})
        assert status == 201 and body["responseCode"] == 404, body
        assert len(device.executed) == 1


async def test_command_to_a_silent_device_is_an_honest_504(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "mute-1") as device:
        await session_connected(translator, "mute-1")
        await eventually(lambda: _observed(device), what="set-up to finish")
        port = device.port
        await device.close()
        # Something still holds the device's address but never answers (a hung client).
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", port)
        )
        try:
            started = loop.time()
            status, body = await rest.request(
                "POST", "/api/devices/mute-1/components/device/commands/reboot", {}
            )
            assert status == 201, body
            assert body["responseCode"] == 504, body
            assert "error" in body["response"], body
            assert loop.time() - started < 5.0
        finally:
            transport.close()


async def _observed(device: Any) -> bool:
    return bool(device.observed)


def _presence(translator: Translator, endpoint: str) -> Presence:
    assert translator.coap is not None
    presence = translator.coap.devices.presence(endpoint)
    assert presence is not None, f"{endpoint} is not registered"
    return presence


async def asleep(translator: Translator, endpoint: str) -> None:
    """Until the translator holds requests for the queue-mode device instead of sending them (its awake
    window since the last thing it sent has passed)."""

    async def holding() -> bool:
        return not _presence(translator, endpoint).listening

    await eventually(holding, timeout=translator.settings.coap.queue_window + STEP, what=f"{endpoint} asleep")


async def held(translator: Translator, endpoint: str) -> None:
    """Until a request waits for the queue-mode device to wake."""

    async def waiting() -> bool:
        return _presence(translator, endpoint).held > 0

    await eventually(waiting, what=f"a request held for {endpoint}")


async def test_queue_mode_device_gets_the_command_when_it_wakes(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "sleepy-1", queue_mode=True) as device:
        await session_connected(translator, "sleepy-1")
        await device.sleep()
        await asleep(translator, "sleepy-1")

        async def wake_once_held() -> None:
            await held(translator, "sleepy-1")
            await device.wake()

        waking = asyncio.create_task(wake_once_held())
        status, body = await rest.request(
            "POST", "/api/devices/sleepy-1/components/device/commands/reboot", {}
        )
        await waking
        assert status == 201, body
        assert body["responseCode"] == 200, body
        assert [path for path, _ in device.executed] == [REBOOT]

        # A desired property for a sleeping device: in progress (202), then written and acknowledged on wake.
        await device.sleep()
        await asleep(translator, "sleepy-1")
        status, _ = await rest.request(
            "PATCH", "/api/devices/sleepy-1/components/device/properties", {"timezone": "Europe/Paris"}
        )
        assert status == 202

        async def in_progress() -> bool:
            meta = await _metadata(rest, "sleepy-1", "device", "timezone")
            return meta.get("ackCode") == 202

        await eventually(in_progress, what="ack 202 while asleep")
        await device.wake()

        async def written() -> bool:
            meta = await _metadata(rest, "sleepy-1", "device", "timezone")
            return meta.get("ackCode") == 200 and meta.get("ackVersion") == meta.get("desiredVersion")

        await eventually(written, what="ack 200 after wake")
        assert device.values[Path(3, 0, 15)] == "Europe/Paris"


async def test_queue_mode_device_asleep_past_the_deadline_is_an_honest_504(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "sleepy-2", queue_mode=True) as device:
        await session_connected(translator, "sleepy-2")
        await device.sleep()
        await asleep(translator, "sleepy-2")
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, body = await rest.request(
            "POST", "/api/devices/sleepy-2/components/device/commands/reboot", {}
        )
        elapsed = loop.time() - started
        assert status == 201, body
        assert body["responseCode"] == 504, body
        # Answered by the translator at its command deadline, before IoT Central gives up.
        assert elapsed < translator.settings.iotc.command_deadline + 1.0
        # The expired command must not run when the device wakes later: nothing waits for it any more, so
        # the wake-up (its Update answered: the translator has released whatever it held) sends nothing.
        assert _presence(translator, "sleepy-2").held == 0
        await device.wake()
        assert device.executed == []


async def test_offline_command_reaches_the_device_when_it_wakes(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "sleepy-3", queue_mode=True) as device:
        await session_connected(translator, "sleepy-3")
        await device.sleep()
        await asleep(translator, "sleepy-3")
        status, body = await rest.request(
            "POST", "/api/devices/sleepy-3/components/device/commands/reboot?queued=true", {"request": None}
        )
        assert status == 202 and body["queued"] is True, body
        # Taken from IoT Central (completed) and kept by the translator until the device wakes: longer than
        # any method deadline.
        await eventually(lambda: _c2d_empty(emulator, "sleepy-3"), what="the C2D message completed")
        # A duration under test, not a synchronisation: the command outlives every method deadline.
        await asyncio.sleep(translator.settings.iotc.command_deadline + 1.0)
        assert device.executed == []
        await device.wake()
        await eventually(lambda: _executed(device), what="the offline command executed")
        assert [path for path, _ in device.executed] == [REBOOT]


async def _c2d_empty(emulator: Emulator, device_id: str) -> bool:
    device = emulator.application.device(device_id)
    return device is not None and not device.c2d


async def _executed(device: Any) -> bool:
    return bool(device.executed)


async def test_offline_command_waits_for_the_translator(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """Queued while the device has no session at all (never registered): delivered once it registers."""
    status, _ = await rest.request("PUT", "/api/devices/late-1", {"displayName": "late"})
    assert status == 200
    status, body = await rest.request(
        "POST", "/api/devices/late-1/components/device/commands/reboot?queued=true", {}
    )
    assert status == 202, body
    waiting = emulator.application.device("late-1")
    assert waiting is not None and waiting.c2d, "the command waits in IoT Central"
    async with simulated(translator, "late-1") as device:
        await eventually(lambda: _executed(device), what="the offline command executed")
        assert [path for path, _ in device.executed] == [REBOOT]


async def test_desired_property_set_while_disconnected_is_reconciled(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """IoT Hub pushes desired patches only to connected devices: after the reconnect the translator reads the
    twin and writes (and acknowledges) what it has not acknowledged yet."""
    async with simulated(translator, "light-2", values=light_values()) as device:
        await session_connected(translator, "light-2")
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 2})
        assert status == 200
        status, _ = await rest.request(
            "PATCH", "/api/devices/light-2/components/lightControl_0/properties", {"dimmer": 33}
        )
        assert status == 202

        async def acknowledged() -> bool:
            meta = await _metadata(rest, "light-2", "lightControl_0", "dimmer")
            return meta.get("ackCode") == 200 and meta.get("ackVersion") == meta.get("desiredVersion")

        await eventually(acknowledged, what="the reconciled dimmer acknowledged")
        assert device.values[DIMMER] == 33
