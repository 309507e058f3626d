"""libcoap's coap-client (a CoAP implementation nobody here wrote) as the device: it registers an endpoint
and posts a SenML JSON Send, which lands in the emulator as telemetry with the device's timestamp."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    COAP_CLIENT,
    coap_address,
    eventually,
    free_udp_port,
    iso_ms,
    log_position,
    telemetry_matching,
)
from translator.serve import Translator

pytestmark = pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap3-bin (coap-client-notls) not installed")


async def _coap_client(*args: str) -> subprocess.CompletedProcess[str]:
    assert COAP_CLIENT is not None
    return await asyncio.to_thread(
        subprocess.run, [COAP_CLIENT, "-B", "15", *args], capture_output=True, text=True, timeout=30
    )


async def test_coap_client_registers_and_sends(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    host, port = coap_address(translator)
    base = f"coap://{host}:{port}"
    local = str(free_udp_port())  # one local port for every request: the translator knows the device by it
    start = await log_position(rest)
    done = await _coap_client(
        "-p", local, "-m", "post", "-t", "40", "-e", "</1>;ver=1.1,</3303/0>",
        f"{base}/rd?ep=libcoap-1&lt=300&lwm2m=1.1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert translator.coap is not None
    registration = translator.coap.registration("libcoap-1")
    assert registration is not None and registration.peer[1] == int(local)

    moment = float(int(time.time()) - 120) + 0.5
    senml = [{"bn": "/3303/0/", "bt": moment, "n": "5700", "v": 23.25}]
    done = await _coap_client("-p", local, "-m", "post", "-t", "110", "-e", json.dumps(senml), f"{base}/dp")
    assert done.returncode == 0, done.stderr

    [event] = await telemetry_matching(
        rest, "libcoap-1", lambda e: "iothub-creation-time-utc" in e["properties"], after=start
    )
    assert event["component"] == "temperature_0"
    assert event["body"] == {"temperature": 23.25}
    assert event["properties"]["iothub-creation-time-utc"] == iso_ms(moment)
    device = await rest.get("/api/devices/libcoap-1")
    assert device["provisioned"] is True

    # De-registration ends the device's life: its IoT Central session is closed.
    done = await _coap_client("-p", local, "-m", "delete", f"{base}/rd/{registration.reg_id}")
    assert done.returncode == 0, done.stderr

    async def closed() -> bool:
        assert translator.pool is not None
        return translator.pool.get("libcoap-1") is None and "libcoap-1" not in emulator.hub.sessions

    await eventually(closed, what="the session to close")
