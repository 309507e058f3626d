"""Ephemeral devices end to end (issue 19 §2): a simulated LwM2M device whose codec file says
`connection = "ephemeral"` → the translator → the emulator's HTTPS device API; the telemetry lands and no
MQTT session stays open. A hub that refuses for a while: the device's data is acknowledged once kept in the
outbox, and arrives after the backoff. The HTTP Device Bridge drop-in honours `ephemeral.http_connection`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    STEP,
    eventually,
    iso_ms,
    log_position,
    running_translator,
    send_at,
    simulated,
    telemetry,
    telemetry_matching,
    translator_settings,
)
from tests.e2e.http_ingest import KEY, post
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator
from translator.settings import HttpSettings
from translator.store import DeviceEntry

TEMPERATURE = Lwm2mPath(3303, 0, 5700)
CODEC = """
[template]
id = "dtmi:iotcTranslator:test:ephemeralTemperature;1"
displayName = "Sleepy thermometer"
connection = "ephemeral"

[[telemetry]]
path = "/3303/0/5700"
name = "temperature"
"""


@pytest.fixture
async def ephemeral(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Translator]:
    codec = tmp_path / "sleepy.toml"
    codec.write_text(CODEC)
    settings = translator_settings(emulator, tmp_path / "translator")
    settings = replace(
        settings,
        http=HttpSettings(enabled=True, port=0, key=KEY, timeout=10.0),
        ephemeral=replace(settings.ephemeral, linger=0.05, http_connection="ephemeral"),
    )
    async with running_translator(settings) as running:
        assert running.store is not None
        await running.store.put_device(DeviceEntry("sleepy-1", "sleepy-1", codec=str(codec)))
        yield running


async def no_session(translator: Translator, emulator: Emulator, device_id: str) -> None:
    assert translator.pool is not None
    assert translator.pool.get(device_id) is None  # the pool never held one

    async def closed() -> bool:
        return not emulator.hub.online(device_id) and not emulator.hub.sessions

    await eventually(closed, what=f"no hub session of {device_id}")


async def test_ephemeral_device_sends_with_no_session_held(
    emulator: Emulator, rest: RestClient, ephemeral: Translator
) -> None:
    start = await log_position(rest)
    moment = time.time() - 60
    async with simulated(ephemeral, "sleepy-1") as device:
        response = await send_at(device, [(TEMPERATURE, 19.25, moment)])  # 2.04 once published or kept
        assert response is not None
        # The set-up's Read of the value goes out too; this is the Send's message.
        [event] = await telemetry_matching(
            rest, "sleepy-1", lambda e: e["body"] == {"temperature": 19.25}, after=start
        )
        assert event["properties"]["iothub-creation-time-utc"] == iso_ms(moment)
        await no_session(ephemeral, emulator, "sleepy-1")
        _, view = await rest.request("GET", "/api/devices/sleepy-1")
        assert view["provisioned"] is True
        # A command finds it offline, as IoT Central answers for a device not connected: 408.
        status, answer = await rest.request(
            "POST", "/api/devices/sleepy-1/commands/reboot", {"connectionTimeout": 0, "responseTimeout": 5}
        )
        assert status == 408, answer


async def test_ephemeral_data_waits_in_the_outbox_while_the_hub_refuses(
    emulator: Emulator, rest: RestClient, ephemeral: Translator
) -> None:
    assert ephemeral.store is not None
    start = await log_position(rest)
    async with simulated(ephemeral, "sleepy-1") as device:
        await send_at(device, [(TEMPERATURE, 18.0, time.time())])
        [first] = await telemetry_matching(
            rest, "sleepy-1", lambda e: e["body"] == {"temperature": 18.0}, after=start
        )
        emulator.throttle(1.5, "hub")  # the HTTPS API answers 429 meanwhile
        # Acknowledged (2.04) only once safe: the send fails, so once the outbox row is committed.
        await send_at(device, [(TEMPERATURE, 18.5, time.time())])
        later = emulator.hub.telemetry.since(first["sequence"], "sleepy-1")
        assert {"temperature": 18.5} not in [e.body for e in later]  # refused so far: it was kept
        await telemetry_matching(  # replayed after the backoff
            rest, "sleepy-1", lambda e: e["body"] == {"temperature": 18.5}, after=first["sequence"]
        )
        await eventually(lambda: _outbox_empty(ephemeral), what="the outbox emptied by the replay")
        await no_session(ephemeral, emulator, "sleepy-1")


async def _outbox_empty(translator: Translator) -> bool:
    assert translator.store is not None
    return await translator.store.outbox_depth("sleepy-1") == 0


async def test_http_bridge_device_is_ephemeral_when_configured(
    emulator: Emulator, rest: RestClient, ephemeral: Translator
) -> None:
    start = await log_position(rest)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=STEP)) as client:
        body = {"device": {"deviceId": "http-eph"}, "measurements": {"temperature": 20.5}}
        status, text, _ = await post(client, ephemeral, body)
    assert status == 200, text
    [event] = await telemetry(rest, "http-eph", 1, after=start)
    assert event["body"] == {"temperature": 20.5}
    await no_session(ephemeral, emulator, "http-eph")
