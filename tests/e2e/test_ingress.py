"""Issue 19 §3 end to end: a codec with computed telemetry, enrichment, drop and rename — the devices CSV's
extra columns imported, a simulated LwM2M device sending temperature, humidity and a raw ADC value, and the
emulator (IoT Central over TLS MQTT) receiving the computed values, the enrichment telemetry and the
enrichment properties; `template export --device` shows them."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

import pytest

from emulator.app import Emulator
from emulator.templates import from_interfaces
from tests.conftest import REPO, RestClient
from tests.e2e.conftest import (
    STEP,
    eventually,
    log_position,
    properties,
    send_at,
    session_connected,
    simulated,
    telemetry_matching,
)
from translator import cli
from translator.coap.simulator import default_values
from translator.codec import export_template, load_codec
from translator.lwm2m import ObjectRegistry
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator
from translator.settings import Settings

CLIMATE = REPO / "docs" / "examples" / "climate.toml"
MODEL = "dtmi:iotcTranslator:examples:climate;1"
TEMPERATURE = Lwm2mPath(3303, 0, 5700)
HUMIDITY = Lwm2mPath(3304, 0, 5700)
ADC = Lwm2mPath(3300, 0, 5700)


def _dew_point(t: float, h: float) -> float:
    g = math.log(h / 100) + 17.625 * t / (243.04 + t)
    return 243.04 * g / (17.625 - g)


async def test_computed_telemetry_and_enrichment_reach_iot_central(
    emulator: Emulator,
    rest: RestClient,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = tmp_path / "devices.csv"
    table.write_text(
        "deviceId,endpoint,codec,Site,building,customer\n"
        f"climate-1,urn:dev:climate-1,{CLIMATE},Lyon,B2,Contoso\n"
    )
    argv = ["devices", "import", str(table), "--state-dir", str(settings.state_dir)]
    assert await asyncio.to_thread(cli.main, argv) == 0
    exported = export_template(load_codec(CLIMATE, ObjectRegistry.builtin()))
    status, _ = await rest.request("PUT", f"/api/deviceTemplates/{MODEL}", from_interfaces(exported))
    assert status == 200
    values = {**default_values(), TEMPERATURE: 21.5, HUMIDITY: 55.0, ADC: 1000.0}

    async with asyncio.timeout(4 * STEP), Translator(settings) as translator:
        start = await log_position(rest)
        async with simulated(translator, "urn:dev:climate-1", values=values) as device:
            await session_connected(translator, "climate-1")
            now = float(int(time.time()))
            await send_at(device, [(TEMPERATURE, 10.0, now), (HUMIDITY, 40.0, now), (ADC, 2048.0, now)])
            [event] = await telemetry_matching(
                rest, "climate-1", lambda e: e["body"].get("temperature") == 10.0, after=start
            )
            body = event["body"]
            assert body["dewPoint"] == pytest.approx(_dew_point(10.0, 40.0))
            assert body["temperatureF"] == 50.0
            assert body["supply"] == 1.65
            assert body["relativeHumidity"] == 40.0  # renamed
            assert body["customer"] == "Contoso"  # enrichment telemetry
            assert "adcRaw" not in body and "humidity" not in body  # dropped / renamed

            async def enriched() -> bool:
                found = await properties(rest, "climate-1")
                return found.get("site") == "Lyon" and found.get("building") == "B2"

            await eventually(enriched, what="the enrichment properties of climate-1")

    export = ["template", "export", "--device", "climate-1", "--state-dir", str(settings.state_dir)]
    export += ["--overrides", str(REPO / "codecs")]
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, export) == 0
    contents = {c["name"]: c for c in json.loads(capsys.readouterr().out)[0]["contents"]}
    assert contents["dewPoint"]["unit"] == "degreeCelsius"
    assert contents["site"] == {"@type": "Property", "name": "site", "schema": "string"}
    assert "relativeHumidity" in contents and "adcRaw" not in contents
