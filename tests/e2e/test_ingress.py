"""Issue 19 §3 end to end: a codec with computed telemetry, enrichment, drop and rename — the devices CSV's
extra columns imported, a simulated LwM2M device sending temperature, humidity and a raw ADC value, and the
emulator (IoT Central over TLS MQTT) receiving the computed values, the enrichment telemetry and the
enrichment properties; `template export --device` shows them. And the HTTP face's TTN adapter running the
same transforms (`http.transforms`) on an uplink's decoded payload."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from emulator.app import Emulator
from emulator.templates import from_interfaces
from tests.conftest import REPO, RestClient, device_template
from tests.e2e.conftest import (
    STEP,
    eventually,
    log_position,
    properties,
    send_at,
    session_connected,
    simulated,
    telemetry,
    telemetry_matching,
)
from tests.e2e.http_ingest import KEY, bridge_settings, post
from tests.e2e.http_ingest import MODEL as HTTP_MODEL
from tests.http.samples import TTN_UPLINK
from translator import cli
from translator.coap.simulator import default_values
from translator.codec import export_template, load_codec
from translator.http.server import TTN_UPLINK_PATH
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


METER = """[template]
id = "dtmi:test:meter;1"
[[telemetry]]
path = "/3303/0/5700"
name = "temperature"
[[property]]
path = "/3/0/0"
name = "{name}"
{transform}"""


async def test_a_property_is_renamed_by_its_own_name_not_by_a_rename_rule(
    rest: RestClient,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Drop and rename take telemetry: a rename of a property is refused at import with its file, line and
    the way to do it (docs/codec.md), and done that way IoT Central gets the property under its new name."""
    codec = tmp_path / "meter.toml"
    codec.write_text(
        METER.format(name="maker", transform='[transform]\nrename = { maker = "manufacturer" }\n')
    )
    table = tmp_path / "devices.csv"
    table.write_text(f"deviceId,endpoint,codec\nmeter-1,urn:dev:meter-1,{codec}\n")
    argv = ["devices", "import", str(table), "--state-dir", str(settings.state_dir)]
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, argv) == 2
    assert f"{codec}:10: transform.rename: 'maker' is a property: drop and rename apply to telemetry" in (
        capsys.readouterr().err
    )
    codec.write_text(METER.format(name="manufacturer", transform=""))  # what the message says to do
    assert await asyncio.to_thread(cli.main, argv) == 0

    async def reported() -> bool:
        found = await properties(rest, "meter-1")
        return found.get("manufacturer") == "iotc-translator" and "maker" not in found

    values = {**default_values(), TEMPERATURE: 20.0}
    async with (
        asyncio.timeout(4 * STEP),
        Translator(settings) as translator,
        simulated(translator, "urn:dev:meter-1", values=values),
    ):
        await session_connected(translator, "meter-1")
        await eventually(reported, what="meter-1's manufacturer under its new name")


DEW_POINT = (
    "243.04 * (log(humidity / 100) + 17.625 * temperature / (243.04 + temperature))"
    " / (17.625 - log(humidity / 100) - 17.625 * temperature / (243.04 + temperature))"
)
TTN_TRANSFORMS = f"""
[[computed]]
name = "dewPoint"
expression = "{DEW_POINT}"
unit = "degreeCelsius"

[[enrichment]]
name = "customer"
as = "telemetry"

[[enrichment]]
name = "site"

[transform]
rename = {{ humidity = "relativeHumidity" }}
"""


async def test_the_http_bridge_runs_the_same_transforms_on_a_ttn_uplink(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    transforms = tmp_path / "ttn.toml"
    transforms.write_text(TTN_TRANSFORMS)
    settings = bridge_settings(emulator, tmp_path / "translator")
    settings = replace(settings, http=replace(settings.http, transforms=transforms))
    table = tmp_path / "devices.csv"
    table.write_text("deviceId,customer,site\neui-0004a30b001c0530,Contoso,Lyon\n")
    argv = ["devices", "import", str(table), "--state-dir", str(settings.state_dir)]
    assert await asyncio.to_thread(cli.main, argv) == 0
    emulator.publish_template(HTTP_MODEL, device_template(HTTP_MODEL))

    async with (
        asyncio.timeout(4 * STEP),
        Translator(settings) as translator,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=STEP)) as client,
    ):
        start = await log_position(rest)
        params = {"code": KEY, "modelId": HTTP_MODEL}
        status, text, _ = await post(client, translator, TTN_UPLINK, path=TTN_UPLINK_PATH, params=params)
        assert status == 200, text
        [event] = await telemetry(rest, "eui-0004a30b001c0530", 1, after=start)
        assert event["body"] == {
            "temperature": 21.5,
            "relativeHumidity": 40,
            "dewPoint": pytest.approx(_dew_point(21.5, 40)),
            "customer": "Contoso",
        }

        async def enriched() -> bool:
            return (await properties(rest, "eui-0004a30b001c0530")).get("site") == "Lyon"

        await eventually(enriched, what="the enrichment property of the TTN device")
