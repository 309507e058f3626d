"""DTLS-PSK end to end: libcoap's coap-client-openssl registers and sends through the translator's DTLS port
into the emulator; a simulated DTLS device takes a command; with IoT Central configured the plain port admits
neither a secured endpoint nor (by default) an unknown one."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    coap_address,
    free_udp_port,
    log_position,
    running_translator,
    session_connected,
    telemetry_matching,
)
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.serve import Translator
from translator.settings import Settings
from translator.store import PskEntry

COAP_DTLS_CLIENT = shutil.which("coap-client-openssl")
COAP_CLIENT = shutil.which("coap-client-notls")
KEY = b"e2e-dtls-key-0123456789"


@pytest.fixture
async def closed_translator(settings: Settings) -> AsyncIterator[Translator]:
    """The translator as deployed against a real IoT Central: no open registration on the plain port."""
    chosen = replace(settings, coap=replace(settings.coap, insecure_auto_register=False))
    async with running_translator(chosen) as running:
        yield running


async def _run(client: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    assert client is not None
    return await asyncio.to_thread(
        subprocess.run, [client, "-B", "15", *args], capture_output=True, text=True, timeout=30
    )


@pytest.mark.skipif(COAP_DTLS_CLIENT is None or COAP_CLIENT is None, reason="libcoap3-bin not installed")
async def test_coap_client_openssl_registers_and_sends_over_dtls(
    emulator: Emulator, rest: RestClient, closed_translator: Translator
) -> None:
    translator = closed_translator
    assert translator.coap is not None and translator.coap.dtls is not None
    # Provisioned while the translator runs: no restart.
    await translator.store.put_psk(PskEntry("psk-id-1", "dtls-1", KEY))
    base = f"coaps://127.0.0.1:{translator.coap.dtls.port}"
    local = str(free_udp_port())
    start = await log_position(rest)
    psk = ("-u", "psk-id-1", "-k", KEY.decode())
    done = await _run(
        COAP_DTLS_CLIENT, *psk, "-p", local, "-m", "post", "-t", "40", "-e", "</1>;ver=1.1,</3303/0>",
        f"{base}/rd?ep=dtls-1&lt=300&lwm2m=1.1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert translator.coap.registration("dtls-1") is not None
    moment = float(int(time.time()) - 60) + 0.5
    senml = [{"bn": "/3303/0/", "bt": moment, "n": "5700", "v": 19.75}]
    done = await _run(
        COAP_DTLS_CLIENT, *psk, "-p", local, "-m", "post", "-t", "110", "-e", json.dumps(senml), f"{base}/dp"
    )
    assert done.returncode == 0, done.stderr
    [event] = await telemetry_matching(
        rest, "dtls-1", lambda e: "iothub-creation-time-utc" in e["properties"], after=start
    )
    assert event["component"] == "temperature_0"
    assert translator.ops is not None
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{translator.ops.port}/metrics") as response,
    ):
        metrics = await response.text()
    assert 'iotc_translator_dtls_events{event="handshakes"} 2.0' in metrics
    assert "iotc_translator_dtls_sessions " in metrics

    # The plain port: the secured endpoint is refused (4.03), and so is an unknown one (safe default).
    host, port = coap_address(translator)
    for endpoint in ("dtls-1", "stranger-1"):
        done = await _run(
            COAP_CLIENT, "-m", "post", "-t", "40", "-e", "</3303/0>",
            f"coap://{host}:{port}/rd?ep={endpoint}&lt=300",
        )  # fmt: skip
        assert "4.03" in done.stdout + done.stderr, (endpoint, done.stdout, done.stderr)
    assert translator.coap.registration("stranger-1") is None


async def test_a_dtls_device_takes_a_command(
    emulator: Emulator, rest: RestClient, closed_translator: Translator
) -> None:
    translator = closed_translator
    assert translator.coap is not None and translator.coap.dtls is not None
    await translator.store.put_psk(PskEntry("psk-id-2", "dtls-2", KEY))
    device = SimulatedDevice(
        "dtls-2",
        ("127.0.0.1", translator.coap.dtls.port),
        options=SimulatorOptions(psk=("psk-id-2", KEY)),
    )
    await device.start()
    try:
        assert (await device.register()).code.is_successful()
        await session_connected(translator, "dtls-2")
        status, body = await rest.request(
            "POST", "/api/devices/dtls-2/components/device/commands/reboot", {"request": None}
        )
        assert status == 201 and body["responseCode"] == 200, body
        assert len(device.executed) == 1
    finally:
        await device.close()
