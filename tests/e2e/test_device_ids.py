"""LwM2M endpoint names as real fleets use them (`urn:imei:`, `urn:dev:ops:`, `urn:uuid:`, odd and long ones)
end to end: simulated device → translator → emulator telemetry log, under the id DPS and the hub accept.

The emulator validates registration ids and device ids as DPS and IoT Hub do, and takes the device id raw
in topics, as IoT Hub does: before the fix a `urn:imei:` device subscribed to a percent-encoded topic and
was disconnected, and `Dev 1` became `%44ev%201`, which DPS refuses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiocoap
import pytest
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient, emulator_config
from tests.e2e.conftest import (
    STEP,
    eventually,
    running_translator,
    session_connected,
    simulated,
    telemetry_matching,
    translator_settings,
)
from tests.pki import make_ca, write_key
from translator.coap import device_id_for
from translator.iotc.protocol.ids import is_safe_device_id
from translator.lwm2m import ContentFormat, Record, encode
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator

TEMPERATURE = Lwm2mPath(3303, 0, 5700)

ENDPOINTS = [
    "urn:imei:359000000000001",
    "urn:dev:ops:001A2B-Sensor-1234",
    "urn:uuid:F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6",
    "Kühlraum 3 / Tür #2",
    "urn:dev:os:32473-" + "0123456789" * 16,
]


async def _delivers(translator: Translator, rest: RestClient, endpoint: str, value: float) -> None:
    device_id = device_id_for(endpoint)
    assert is_safe_device_id(device_id), device_id
    async with simulated(translator, endpoint) as device:
        await session_connected(translator, device_id)
        await eventually(
            lambda: _observing(device.observed), what=f"the observation of {TEMPERATURE} on {endpoint}"
        )
        device.set_value(TEMPERATURE, value)
        events = await telemetry_matching(
            rest, device_id, lambda e: e["body"].get("temperature") == value, timeout=STEP
        )
        assert events[0]["deviceId"] == device_id


async def _observing(observed: object) -> bool:
    return any(TEMPERATURE in paths for paths in observed)  # type: ignore[attr-defined]


async def test_usual_and_odd_endpoint_names_deliver_telemetry(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    values = [31.25 + index for index in range(len(ENDPOINTS))]
    await asyncio.gather(
        *(
            _delivers(translator, rest, endpoint, value)
            for endpoint, value in zip(ENDPOINTS, values, strict=True)
        )
    )
    view = await rest.get(f"/api/devices/{device_id_for(ENDPOINTS[0])}")
    assert view["provisioned"] is True


# -- X.509: a CN holds at most 64 characters ----------------------------------------------------------


@contextlib.asynccontextmanager
async def _x509_world(tmp_path: Path) -> AsyncIterator[tuple[Emulator, Translator]]:
    (tmp_path / "enrollment").mkdir()
    issuer = make_ca(tmp_path / "enrollment", "Test Enrollment CA")
    key = write_key(issuer, tmp_path / "enrollment" / "ca-key.pem")
    async with Emulator(emulator_config(tmp_path / "emulator", x509_enrollment_ca=issuer.path)) as emulator:
        settings = translator_settings(emulator, tmp_path / "translator")
        iotc = replace(settings.iotc, group_key="", x509_ca_cert=issuer.path, x509_ca_key=key)
        async with running_translator(replace(settings, iotc=iotc)) as translator:
            yield emulator, translator


async def _send(device: object, value: float) -> aiocoap.Message:
    payload = encode(ContentFormat.SENML_JSON, [Record(TEMPERATURE, value, None)], base_path=Lwm2mPath())
    message = aiocoap.Message(
        code=AioCode.POST,
        uri=device._uri("dp"),  # type: ignore[attr-defined]
        content_format=ContentFormat.SENML_JSON,
        payload=payload,
    )
    response: aiocoap.Message = await device._send(message, timeout=STEP)  # type: ignore[attr-defined]
    return response


@pytest.mark.parametrize("length", [64, 65])
async def test_minted_certificates_need_ids_of_at_most_64_characters(tmp_path: Path, length: int) -> None:
    """A 64-character id gets its certificate and delivers; a 65-character one is refused with 4.03 and why,
    rather than failing somewhere inside the certificate library."""
    endpoint = "urn:imei:" + "7" * (length - len("urn:imei:"))
    async with _x509_world(tmp_path) as (emulator, translator), simulated(translator, endpoint) as device:
        response = await _send(device, 21.5)
        if length <= 64:
            assert response.code == AioCode.CHANGED, (response.code, response.payload)
            await eventually(
                lambda: _attested(emulator, endpoint), what=f"{endpoint} provisioned with its certificate"
            )
        else:
            assert response.code == AioCode.FORBIDDEN, (response.code, response.payload)
            assert b"at most 64" in response.payload
            assert emulator.application.device(endpoint) is None


async def _attested(emulator: Emulator, device_id: str) -> bool:
    device = emulator.application.device(device_id)
    delivered = bool(emulator.hub.telemetry.since(0, device_id))
    return device is not None and device.attestation == "x509" and delivered
