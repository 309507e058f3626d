"""End-to-end fixtures: the real emulator over TLS, the real translator on loopback sockets, and helpers
that wait (always bounded) on what lands in the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiocoap
import pytest
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import REPO, RestClient
from translator.coap import CoapSettings
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.lwm2m import ContentFormat, Record, Value, encode
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator
from translator.settings import CodecSettings, IotcSettings, OperationsSettings, Settings
from translator.settings_ephemeral import EphemeralSection

STEP = 20.0  # the bound of every single wait in these tests
COAP_CLIENT = shutil.which("coap-client-notls")

FAST_COAP = CoapSettings(
    host="127.0.0.1",
    port=0,
    dtls_port=0,
    # The emulator is configured like a real IoT Central (id_scope): these tests opt in to open registration.
    insecure_auto_register=True,
    grace=0.0,
    tick=0.1,
    request_timeout=2.0,
    composite_timeout=1.0,
    queue_window=0.5,
    queue_deadline=6.0,
    sink_timeout=8.0,
)


def translator_settings(emulator: Emulator, state_dir: Path, **iotc: Any) -> Settings:
    assert emulator.tls is not None
    return Settings(
        state_dir=state_dir,
        coap=FAST_COAP,
        iotc=IotcSettings(
            id_scope=emulator.application.id_scope,
            group_key=emulator.application.group_primary_key,
            dps_host="127.0.0.1",
            dps_port=emulator.mqtt_port,
            hub_port=emulator.mqtt_port,
            ca_file=Path(emulator.tls.ca_path),
            gateway_host="127.0.0.1",
            connect_rate=1000.0,
            telemetry_timeout=2.0,
            command_deadline=4.0,
            # An outage of a few seconds should cost a few seconds (the backoff has its own unit tests).
            reconnect_min=0.2,
            reconnect_max=2.0,
            # Tests about other things register up to a few hundred devices at once: DPS's real quota
            # (200/min, paced with a burst of 20) would make them about DPS. tests/e2e/test_pacing.py and
            # tests/iotc/test_pacing_emulator.py hold the quotas.
            **({"dps_registrations_per_minute": 60_000.0} | iotc),
        ),
        codec=CodecSettings(directory=REPO / "codecs"),
        operations=OperationsSettings(port=0),
        ephemeral=EphemeralSection(hub_https_port=emulator.https_port),
    )


def restartable_settings(emulator: Emulator, state_dir: Path) -> Settings:
    """Settings for a translator that is restarted in the test: a fixed CoAP port, so that its devices find
    the next one where the first one was."""
    settings = translator_settings(emulator, state_dir)
    return replace(settings, coap=replace(settings.coap, port=free_udp_port()))


@pytest.fixture
def settings(emulator: Emulator, tmp_path: Path) -> Settings:
    return translator_settings(emulator, tmp_path / "translator")


@contextlib.asynccontextmanager
async def running_translator(settings: Settings) -> AsyncIterator[Translator]:
    """A translator started and, however the body ends, stopped: each of the two bounded by STEP."""
    running = Translator(settings)
    async with asyncio.timeout(STEP):
        await running.start()
    try:
        yield running
    finally:
        async with asyncio.timeout(STEP):
            await running.stop()


@pytest.fixture
async def translator(settings: Settings) -> AsyncIterator[Translator]:
    async with running_translator(settings) as running:
        yield running


def coap_address(translator: Translator) -> tuple[str, int]:
    assert translator.coap is not None
    return ("127.0.0.1", translator.coap.port)


@contextlib.asynccontextmanager
async def simulated(
    translator: Translator,
    endpoint: str,
    *,
    register: bool = True,
    values: Mapping[Lwm2mPath, Value] | None = None,
    **options: Any,
) -> AsyncIterator[SimulatedDevice]:
    device = SimulatedDevice(
        endpoint, coap_address(translator), options=replace(SimulatorOptions(), **options), values=values
    )
    await device.start()
    try:
        if register:
            response = await device.register()
            assert response.code.is_successful(), response
        yield device
    finally:
        await device.close()


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = STEP, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll `check` until it returns something truthy (or stops raising AssertionError), bounded."""
    last: BaseException | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    result = await check()
                except AssertionError as error:
                    last = error
                else:
                    if result:
                        return result
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or check}: {last}") from last


async def telemetry(
    rest: RestClient, device_id: str, count: int, *, after: int = 0, timeout: float = STEP
) -> list[dict[str, Any]]:
    """Wait until at least `count` telemetry messages of the device are in the emulator's log."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(events) < count:
            last = events[-1]["sequence"] if events else after
            log = await rest.get(f"/emulator/telemetry?deviceId={device_id}&after={last}&wait=1")
            events.extend(log["value"])
    return events


async def properties(rest: RestClient, device_id: str, component: str | None = None) -> dict[str, Any]:
    path = f"/api/devices/{device_id}" + (f"/components/{component}" if component else "") + "/properties"
    status, body = await rest.request("GET", path)
    assert status == 200, (status, body)
    return dict(body)


async def session_connected(translator: Translator, device_id: str) -> None:
    async def connected() -> bool:
        assert translator.pool is not None
        session = translator.pool.get(device_id)
        return session is not None and session.is_connected

    await eventually(connected, what=f"{device_id}'s session")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def send_at(
    device: SimulatedDevice,
    readings: Sequence[tuple[Lwm2mPath, Value, float]],
    *,
    content_format: int = ContentFormat.SENML_JSON,
) -> Any:
    """An LwM2M Send (CON) of `readings` with the device's own timestamps (epoch seconds)."""
    records = [Record(path, value, moment) for path, value, moment in readings]
    payload = encode(content_format, records, base_path=Lwm2mPath(), registry=device.registry)
    message = aiocoap.Message(
        code=AioCode.POST, uri=device._uri("dp"), content_format=content_format, payload=payload
    )
    response = await device._send(message, timeout=STEP)
    assert response.code == AioCode.CHANGED, (response.code, response.payload)
    return response


def iso_ms(moment: float) -> str:
    """How the translator writes a device time into `iothub-creation-time-utc` (ISO 8601, ms, Z)."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def telemetry_matching(
    rest: RestClient,
    device_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    count: int = 1,
    *,
    after: int = 0,
    timeout: float = STEP,
) -> list[dict[str, Any]]:
    """Wait until `count` of the device's telemetry messages after `after` satisfy `predicate`."""
    matching: list[dict[str, Any]] = []
    last = after
    async with asyncio.timeout(timeout):
        while len(matching) < count:
            log = await rest.get(f"/emulator/telemetry?deviceId={device_id}&after={last}&wait=1")
            for event in log["value"]:
                last = event["sequence"]
                if predicate(event):
                    matching.append(event)
    return matching


async def log_position(rest: RestClient) -> int:
    """The sequence number of the newest message in the emulator's telemetry log."""
    return int((await rest.get("/emulator/telemetry?after=1000000000"))["next"])
