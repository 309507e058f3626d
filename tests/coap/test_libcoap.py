"""Interoperability with libcoap's coap-client: a CoAP client nobody here wrote."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess

import pytest

from tests.coap.support import RecordingSink, wait_until
from translator.coap import Lwm2mServer, TelemetrySource
from translator.lwm2m import Path, Record

COAP_CLIENT = shutil.which("coap-client-notls")
pytestmark = pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap3-bin (coap-client-notls) not installed")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _coap_client(*args: str) -> subprocess.CompletedProcess[str]:
    assert COAP_CLIENT is not None
    return await asyncio.to_thread(
        subprocess.run, [COAP_CLIENT, "-B", "5", *args], capture_output=True, text=True, timeout=15
    )


async def test_coap_client_registers_and_sends(server: Lwm2mServer, sink: RecordingSink) -> None:
    port = _free_port()
    base = f"coap://127.0.0.1:{server.port}"
    done = await _coap_client(
        "-p",
        str(port),
        "-m",
        "post",
        "-t",
        "40",
        "-e",
        "</1>;ver=1.1,</3303/0>",
        f"{base}/rd?ep=libcoap-dev&lt=300&lwm2m=1.1",
    )
    assert done.returncode == 0, done.stderr
    reg = server.registration("libcoap-dev")
    assert reg is not None and reg.peer[1] == port and 3303 in reg.objects.objects
    done = await _coap_client(
        "-p",
        str(port),
        "-m",
        "post",
        "-t",
        "110",
        "-e",
        '[{"bn":"/3303/0/","n":"5700","v":21.5}]',
        f"{base}/dp",
    )
    assert done.returncode == 0, done.stderr
    await wait_until(lambda: sink.records(TelemetrySource.SEND), what="records")
    device, records, _, confirmable = sink.batches[-1]
    assert device.endpoint == "libcoap-dev" and confirmable
    assert records == [Record(Path(3303, 0, 5700), 21.5)]
    done = await _coap_client("-p", str(port), "-m", "delete", f"{base}/rd/{reg.reg_id}")
    assert done.returncode == 0, done.stderr
    await wait_until(lambda: server.registration("libcoap-dev") is None, what="de-registration")
