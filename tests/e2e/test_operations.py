"""Operations end to end: `/metrics` (Prometheus text) and `/healthz` with figures that match what happened,
and `iotc-translator devices import` of a CSV whose device id, key and codec are then what the device uses."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from emulator.app import Emulator
from emulator.sas import derive_device_key
from emulator.templates import from_interfaces
from tests.conftest import REPO, RestClient
from tests.e2e.conftest import (
    STEP,
    eventually,
    log_position,
    send_at,
    session_connected,
    simulated,
    telemetry_matching,
)
from translator import cli
from translator.codec import export_template, load_codec
from translator.iotc.client.session_types import SessionState
from translator.lwm2m import ObjectRegistry
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator
from translator.settings import Settings

TEMPERATURE = Lwm2mPath(3303, 0, 5700)
TEMPERATURE_CODEC = REPO / "codecs" / "3303-temperature.toml"
TEMPERATURE_MODEL = "dtmi:iotcTranslator:codecs:temperatureSensor;1"


async def _http(port: int, path: str) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=STEP)) as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_and_health(emulator: Emulator, rest: RestClient, translator: Translator) -> None:
    assert translator.ops is not None
    port = translator.ops.port
    async with simulated(translator, "ops-1") as device:
        await session_connected(translator, "ops-1")
        start = await log_position(rest)
        moment = float(int(time.time()) - 30)
        for n in range(3):
            await send_at(device, [(TEMPERATURE, 20.0 + n, moment + n)])
        # The three Sends themselves (values read at registration, outboxed while the session came up,
        # carry a creation time too, and may arrive first).
        await telemetry_matching(
            rest,
            "ops-1",
            lambda e: (
                e["body"].get("temperature") in (20.0, 21.0, 22.0)
                and "iothub-creation-time-utc" in e["properties"]
            ),
            3,
            after=start,
        )
        status, body = await rest.request("POST", "/api/devices/ops-1/components/device/commands/reboot", {})
        assert status == 201 and body["responseCode"] == 200, body

        status, content_type, text = await _http(port, "/metrics")
        assert status == 200
        assert content_type.startswith("text/plain")
        samples = _samples(text)
        assert samples[("iotc_translator_messages_in_total", (("source", "send"),))] == 3
        assert samples[("iotc_translator_messages_out_total", ())] >= 3
        assert samples[("iotc_translator_registrations", ())] == 1
        assert samples[("iotc_translator_devices", ())] == 1
        assert samples[("iotc_translator_sessions", (("state", "connected"),))] == 1
        assert samples[("iotc_translator_outbox_depth", ())] == 0
        assert samples[("iotc_translator_command_seconds_count", (("outcome", "ok"),))] == 1
        # The pacers' progress (issue 14 §3): one DPS registration, a hub connect, the messages sent.
        assert samples[("iotc_translator_pacer_granted", (("pacer", "dps"),))] == 1
        assert samples[("iotc_translator_pacer_granted", (("pacer", "hub-connect"),))] >= 1
        assert samples[("iotc_translator_pacer_granted", (("pacer", "telemetry"),))] >= 3
        assert samples[("iotc_translator_pacer_rate", (("pacer", "twin"),))] == 100.0

        status, content_type, text = await _http(port, "/healthz")
        assert status == 200 and content_type.startswith("application/json")
        health = json.loads(text)
        assert health["status"] == "ok"
        assert health["devices"] == 1
        assert health["sessions"] == {"connected": 1}


async def test_imported_device_uses_its_id_key_and_codec(
    emulator: Emulator, rest: RestClient, settings: Settings, tmp_path: Path
) -> None:
    application = emulator.application
    good_key = derive_device_key(application.group_secondary_key, "imported-a")
    table = tmp_path / "devices.csv"
    table.write_text(
        "deviceId,endpoint,codec,symmetricKey\n"
        f"imported-a,urn:dev:imp-a,{TEMPERATURE_CODEC},{good_key}\n"
        f"imported-b,imp-b,,{derive_device_key(application.group_secondary_key, 'someone-else')}\n"
    )
    argv = ["devices", "import", str(table), "--state-dir", str(settings.state_dir)]
    assert await asyncio.to_thread(cli.main, argv) == 0
    # README step 2: the codec's exported template is published before its devices first connect.
    exported = from_interfaces(export_template(load_codec(TEMPERATURE_CODEC, ObjectRegistry.builtin())))
    status, _ = await rest.request("PUT", f"/api/deviceTemplates/{TEMPERATURE_MODEL}", exported)
    assert status == 200

    async with Translator(settings) as translator:
        start = await log_position(rest)
        async with simulated(translator, "urn:dev:imp-a") as device:
            await session_connected(translator, "imported-a")
            await send_at(device, [(TEMPERATURE, 24.5, float(int(time.time())))])
            # The Send (the registration's values may carry their receive time too, if they were outboxed).
            [event] = await telemetry_matching(
                rest, "imported-a", lambda e: e["body"].get("temperature") == 24.5, after=start
            )
            # The imported codec's own component name (the default codec would say temperature_0).
            assert event["component"] == "temperature"
            assert event["body"] == {"temperature": 24.5}
            view = await rest.get("/api/devices/imported-a")
            assert view["template"] == TEMPERATURE_MODEL

        # A wrong imported key is really used: the hub (and DPS) refuse that device.
        async with simulated(translator, "imp-b"):
            pool = translator.pool
            assert pool is not None

            async def refused() -> bool:
                # The attempt happened and failed (backing off to retry): "not connected" right after
                # the Register would also hold if nothing had been tried yet.
                session = pool.get("imported-b")
                return session is not None and session.status.state is SessionState.BACKING_OFF

            await eventually(refused, what="the hub or DPS refusing imported-b's wrong key")
            session = pool.get("imported-b")
            assert session is not None and not session.is_connected
            status, body = await rest.request("GET", "/api/devices/imported-b")
            assert status == 404 or body["provisioned"] is False, body
