"""Device approval and blocked devices end to end (issue 19 §5): IoT Central's DPS refuses such a device with
401 and sub-code 400209 (https://learn.microsoft.com/azure/iot-central/core/troubleshoot-connection); the
translator says so (healthz, metrics, a warning), keeps the device's telemetry in the outbox within its
limits (2.04 only once kept, 5.03 + Max-Age when full), asks DPS again only after long jittered waits, and
delivers everything once an operator approves the device."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiocoap
import aiohttp
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    STEP,
    eventually,
    log_position,
    send_at,
    session_connected,
    simulated,
    telemetry_matching,
    translator_settings,
)
from translator.coap.simulator import SimulatedDevice
from translator.iotc.client.session import SessionState
from translator.lwm2m import ContentFormat, Record, Value, encode
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator
from translator.settings import Settings, StoreSettings

TEMPERATURE = Lwm2mPath(3303, 0, 5700)
SENSOR: dict[Lwm2mPath, Value] = {TEMPERATURE: 21.5, Lwm2mPath(3303, 0, 5701): "Cel"}
KEPT = 5  # the outbox bound of these tests, per device


def _settings(emulator: Emulator, state: Path, *, approval_retry: float, approval_max: float) -> Settings:
    settings = translator_settings(
        emulator, state, approval_retry=approval_retry, approval_retry_max=approval_max
    )
    return replace(settings, store=StoreSettings(outbox_device_limit=KEPT))


async def _healthz(translator: Translator) -> dict[str, Any]:
    assert translator.ops is not None
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{translator.ops.port}/healthz") as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def _waiting(translator: Translator, device_id: str) -> None:
    async def waiting() -> bool:
        assert translator.pool is not None
        session = translator.pool.get(device_id)
        return session is not None and session.status.state is SessionState.WAITING_APPROVAL

    await eventually(waiting, what=f"{device_id} waiting for approval")


async def _send(device: SimulatedDevice, value: float, moment: float) -> aiocoap.Message:
    payload = encode(
        ContentFormat.SENML_JSON,
        [Record(TEMPERATURE, value, moment)],
        base_path=Lwm2mPath(),
        registry=device.registry,
    )
    message = aiocoap.Message(
        code=AioCode.POST, uri=device._uri("dp"), content_format=ContentFormat.SENML_JSON, payload=payload
    )
    response: aiocoap.Message = await device._send(message, timeout=STEP)
    return response


def _reading(event: dict[str, Any]) -> bool:
    return event["component"] == "temperature_0" and float(event["body"].get("temperature", 0)) >= 1000


async def test_waiting_for_approval_keeps_telemetry_and_delivers_all_once_approved(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    status, _ = await rest.request("PUT", "/emulator/approval", {"autoApprove": False})
    assert status == 200
    settings = _settings(emulator, tmp_path / "translator", approval_retry=0.5, approval_max=1.0)
    async with Translator(settings) as translator, simulated(translator, "appr-1", values=SENSOR) as device:
        await _waiting(translator, "appr-1")
        start = await log_position(rest)
        base = float(int(time.time()) - 60)
        # Each reading is answered 2.04 only once it is in the (fsynced) outbox; one over the outbox's bound
        # is refused honestly: 5.03 with a Max-Age to retry after. (The set-up Read's value may hold a row.)
        accepted: list[int] = []
        for n in range(2 * KEPT):
            response = await _send(device, 1000.0 + n, base + n)
            if response.code != AioCode.CHANGED:
                assert response.code == AioCode.SERVICE_UNAVAILABLE, response
                assert response.opt.max_age is not None and response.opt.max_age > 0
                break
            accepted.append(n)
        assert len(accepted) in (KEPT - 1, KEPT), accepted

        health = await _healthz(translator)
        assert health["waiting_for_approval"] == ["appr-1"]
        assert health["sessions"]["waiting for approval"] == 1
        gauge = translator.metrics.registry.get_sample_value(
            "iotc_translator_sessions", {"state": "waiting for approval"}
        )
        assert gauge == 1.0
        view = await rest.get("/api/devices/appr-1")
        assert (view["enabled"], view["provisioned"]) == (False, False)  # IoT Central: Waiting for approval

        status, _ = await rest.request("PATCH", "/api/devices/appr-1", {"enabled": True})  # the operator
        assert status == 200
        await session_connected(translator, "appr-1")
        events = await telemetry_matching(rest, "appr-1", _reading, len(accepted), after=start)
        assert sorted(int(e["body"]["temperature"]) for e in events) == [1000 + n for n in accepted]
        assert "waiting_for_approval" not in await _healthz(translator)


async def test_a_blocked_device_stays_out_without_a_storm(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    """Blocked while connected: the hub drops it and refuses it (CONNACK 3), DPS then says why (401/400209),
    and from then on DPS hears from it only after waits of 1..4 s here, the hub not at all — where the
    reconnect loop (0.2..2 s, full jitter) would have asked twice as often, alternating hub and DPS."""
    settings = _settings(emulator, tmp_path / "translator", approval_retry=2.0, approval_max=4.0)
    async with Translator(settings) as translator, simulated(translator, "blk-1", values=SENSOR) as device:
        await session_connected(translator, "blk-1")
        status, _ = await rest.request("PATCH", "/api/devices/blk-1", {"enabled": False})
        assert status == 200
        await _waiting(translator, "blk-1")
        before = await rest.get("/emulator/attempts?deviceId=blk-1")
        window = 6.0
        started = time.monotonic()
        # Telemetry meanwhile is kept, and answered 2.04.
        await send_at(device, [(TEMPERATURE, 1000.0, time.time())])
        while time.monotonic() - started < window:
            await eventually(lambda: _still_waiting(translator), what="blk-1 still out")
            await asyncio.sleep(0.5)  # the window is measured time, not a synchronisation
        after = await rest.get("/emulator/attempts?deviceId=blk-1")
        dps, hub = after["dps"] - before["dps"], after["hub"] - before["hub"]
        # Waits drawn from [1, 2) then [2, 4): at most 4 DPS requests in 6 s, and none to the hub.
        assert dps <= 4, dps
        assert hub == 0, hub
        view = await rest.get("/api/devices/blk-1")
        assert view["enabled"] is False


async def _still_waiting(translator: Translator) -> bool:
    assert translator.pool is not None
    session = translator.pool.get("blk-1")
    return session is not None and session.status.state in (
        SessionState.WAITING_APPROVAL,
        SessionState.PROVISIONING,
    )
