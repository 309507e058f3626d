"""A device whose imported codec file no longer loads (edited after `devices import`) is refused at its
Register — 4.03 with the file, line and field as diagnostic payload, one log line, no traceback — instead of
a 2.01 for a device whose data nobody can translate; its Sends are never acknowledged 2.04; once the file is
mended the same device registers and its telemetry reaches IoT Central."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    STEP,
    restartable_settings,
    running_translator,
    session_connected,
    simulated,
    telemetry_matching,
)
from translator import cli
from translator.coap.simulator import default_values
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator
from translator.settings import Settings

TEMPERATURE = Lwm2mPath(3303, 0, 5700)
METER = """[template]
id = "dtmi:test:refusedmeter;1"
[[telemetry]]
path = "/3303/0/5700"
name = "{name}"
"""


async def imported_meter(settings: Settings, tmp_path: Path, device_id: str) -> Path:
    """`devices import` of `device_id` (endpoint urn:dev:<id>) with a good codec file; the file's path."""
    codec = tmp_path / "meter.toml"
    codec.write_text(METER.format(name="temperature"))
    table = tmp_path / "devices.csv"
    table.write_text(f"deviceId,endpoint,codec\n{device_id},urn:dev:{device_id},{codec}\n")
    argv = ["devices", "import", str(table), "--state-dir", str(settings.state_dir)]
    assert await asyncio.to_thread(cli.main, argv) == 0
    return codec


async def test_a_codec_that_no_longer_loads_refuses_the_register_not_the_sends(
    rest: RestClient,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    codec = await imported_meter(settings, tmp_path, "meter-9")
    codec.write_text(METER.format(name="9temperature"))  # edited after the import: no DTDL name

    values = {**default_values(), TEMPERATURE: 21.5}
    async with asyncio.timeout(4 * STEP), Translator(settings) as translator:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            async with simulated(translator, "urn:dev:meter-9", register=False, values=values) as device:
                response = await device.register()
                assert response.code == AioCode.FORBIDDEN, (response.code, response.payload)
                diagnostic = response.payload.decode()
                assert f"{codec}:5" in diagnostic and "telemetry" in diagnostic, diagnostic
                # Not registered: a Send is not acknowledged (4.04 tells an LwM2M client to register).
                sent = await device.send([TEMPERATURE])
                assert sent.code == AioCode.NOT_FOUND, (sent.code, sent.payload)
        warnings = [
            r for r in caplog.records if r.levelno >= logging.WARNING and str(codec) in r.getMessage()
        ]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
        assert "urn:dev:meter-9" in warnings[0].getMessage() and "refused" in warnings[0].getMessage()
        assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.WARNING), [
            r.getMessage() for r in caplog.records if r.exc_info
        ]
        assert translator.pool is not None and translator.pool.get("meter-9") is None  # no hub session

        codec.write_text(METER.format(name="temperature"))  # mended: the same device registers now
        async with simulated(translator, "urn:dev:meter-9", values=values) as device:
            await session_connected(translator, "meter-9")
            await device.send([TEMPERATURE])
            await telemetry_matching(rest, "meter-9", lambda e: e["body"].get("temperature") == 21.5)


async def test_a_codec_broken_across_a_restart_holds_the_sends_back_without_a_traceback(
    emulator: Emulator, rest: RestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Registered with a good codec, which is broken while the translator is down: the restored
    registration's Sends are answered 5.03 with Max-Age and the codec's error (the device keeps its data
    and tries again), never 2.04; one line per refusal names the file, none is a traceback; mended, the
    same Send goes through."""
    settings = restartable_settings(emulator, tmp_path / "translator")
    codec = await imported_meter(settings, tmp_path, "meter-8")
    values = {**default_values(), TEMPERATURE: 22.5}
    async with (
        asyncio.timeout(6 * STEP),
        running_translator(settings) as first,
        simulated(first, "urn:dev:meter-8", values=values) as device,
    ):
        await session_connected(first, "meter-8")
        await first.stop()
        codec.write_text(METER.format(name="9temperature"))
        caplog.clear()
        with caplog.at_level(logging.INFO):
            async with running_translator(settings):
                for _ in range(2):
                    sent = await device.send([TEMPERATURE])
                    assert sent.code == AioCode.SERVICE_UNAVAILABLE, (sent.code, sent.payload)
                    assert sent.opt.max_age is not None and sent.opt.max_age > 0
                    assert f"{codec}:5" in sent.payload.decode()
                assert not [r.getMessage() for r in caplog.records if r.exc_info], "a traceback"
                assert any(
                    str(codec) in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                )
                codec.write_text(METER.format(name="temperature"))
                device.set_value(TEMPERATURE, 23.5)
                assert (await device.send([TEMPERATURE])).code == AioCode.CHANGED
                await telemetry_matching(rest, "meter-8", lambda e: e["body"].get("temperature") == 23.5)
