"""A translator restart does not take the fleet offline: registrations and observations come back from the
store, notifications keep arriving as telemetry, Update and Send are accepted, and nothing is asked of the
devices again — with simulated clients that react like the real ones (docs: shared/CLIENTS.md): a 1.1
client that stops for good after a 4.04 to its Update, a 1.2 client that drops an observation answered
with RST. And a device behind a NAT that rebinds keeps its commands and Sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import REPO, RestClient
from tests.e2e.clients import CLIENT_11, CLIENT_12, REBOOT, TEMPERATURE, set_up_done, temperature_event
from tests.e2e.conftest import (
    STEP,
    eventually,
    log_position,
    restartable_settings,
    running_translator,
    session_connected,
    simulated,
    telemetry_matching,
)
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.serve import Translator
from translator.settings import Settings


async def _observing(translator: Translator, device: SimulatedDevice) -> None:
    async def ready() -> bool:
        assert translator.coap is not None
        return bool(device.observed) and bool(translator.coap.devices.observations(device.endpoint))

    await eventually(ready, what=f"{device.endpoint} observed")


async def _notified(rest: RestClient, device: SimulatedDevice, value: float, after: int) -> None:
    device.set_value(TEMPERATURE, value)
    await telemetry_matching(rest, device.endpoint, temperature_event(value), after=after)


async def test_restart_keeps_notifications_updates_and_sends_flowing(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    settings = restartable_settings(emulator, tmp_path / "translator")
    async with (
        running_translator(settings) as first,
        simulated(first, "rst-11", **CLIENT_11) as old_client,
        simulated(first, "rst-12", **CLIENT_12) as new_client,
    ):
        fleet = (old_client, new_client)
        for device in fleet:
            await session_connected(first, device.endpoint)
            await set_up_done(first, device)
        asked = {device.endpoint: device.requests_received for device in fleet}
        assert first.bridge is not None and first.bridge.setup_limiter.started == 2  # set-ups take turns
        await first.stop()

        async with running_translator(settings) as second:
            assert second.bridge is not None and second.coap is not None

            async def both_back() -> bool:
                assert second.bridge is not None
                return second.bridge.health()[1]["devices"] == 2

            await eventually(both_back, what="both devices' lives resumed without a word from them")
            start = await log_position(rest)
            for n, device in enumerate(fleet):
                await _notified(rest, device, 40.0 + n, start)  # a notification on a restored token
                assert not device.cancelled_by_rst
                assert (await device.update()).code == AioCode.CHANGED  # rd/<id> is known
                assert not device.stopped
                assert (await device.send([TEMPERATURE])).code == AioCode.CHANGED  # the restored address
                await _notified(rest, device, 50.0 + n, start)  # and it goes on
            assert second.coap.registrations_total == 0  # nobody registered again
            assert second.bridge.setup_limiter.started == 2  # the restore went through the set-up limiter
            assert second.pool is not None and second.pool.counters["dps_registrations"] == 0
            # Observations were restored: no set-up Reads, Write-Attributes or Observes went to the devices.
            assert {device.endpoint: device.requests_received for device in fleet} == asked


async def test_a_device_without_observations_is_set_up_after_a_restart(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    """Stopped before its observations were made: restored all the same, and set up by the new run."""
    settings = restartable_settings(emulator, tmp_path / "translator")
    async with (
        running_translator(settings) as first,
        simulated(first, "rst-q", register=False, queue_mode=True, **CLIENT_12) as device,
    ):
        assert (await device.register()).code == AioCode.CREATED
        await device.sleep()  # asleep before any set-up downlink reached it
        await first.stop()
        async with running_translator(settings) as second:
            await device.wake()  # its Update is accepted, and the held set-up runs
            await _observing(second, device)
            start = await log_position(rest)
            await _notified(rest, device, 33.0, start)
            assert second.coap is not None and second.coap.registrations_total == 0


# --- a real `serve` process, stopped with SIGTERM -----------------------------------------------------


def _serve_environment(settings: Settings) -> dict[str, str]:
    iotc, coap = settings.iotc, settings.coap
    env = {name: value for name, value in os.environ.items() if not name.startswith("IOTC_TRANSLATOR_")}
    env.update(
        {
            "IOTC_TRANSLATOR_STATE_DIR": str(settings.state_dir),
            "IOTC_TRANSLATOR_IOTC_ID_SCOPE": iotc.id_scope,
            "IOTC_TRANSLATOR_IOTC_GROUP_KEY": iotc.group_key,
            "IOTC_TRANSLATOR_IOTC_DPS_HOST": iotc.dps_host,
            "IOTC_TRANSLATOR_IOTC_DPS_PORT": str(iotc.dps_port),
            "IOTC_TRANSLATOR_IOTC_HUB_PORT": str(iotc.hub_port),
            "IOTC_TRANSLATOR_IOTC_CA_FILE": str(iotc.ca_file),
            "IOTC_TRANSLATOR_IOTC_GATEWAY_HOST": str(iotc.gateway_host),
            "IOTC_TRANSLATOR_COAP_HOST": coap.host,
            "IOTC_TRANSLATOR_COAP_PORT": str(coap.port),
            "IOTC_TRANSLATOR_COAP_DTLS_PORT": "0",
            "IOTC_TRANSLATOR_COAP_INSECURE_AUTO_REGISTER": "true",
            "IOTC_TRANSLATOR_COAP_REQUEST_TIMEOUT": "2",
            "IOTC_TRANSLATOR_CODEC_DIRECTORY": str(REPO / "codecs"),
            "IOTC_TRANSLATOR_OPERATIONS_PORT": "0",
        }
    )
    return env


def _settled_in_store(database: Path, endpoint: str) -> bool:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        try:
            row = connection.execute(
                "SELECT data FROM registrations WHERE endpoint = ?", (endpoint,)
            ).fetchone()
        except sqlite3.OperationalError:  # not created yet
            return False
    return row is not None and bool(json.loads(row[0]).get("settled"))


@contextlib.asynccontextmanager
async def _serve(settings: Settings) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from translator.cli import main; sys.exit(main(['serve']))",
        cwd=REPO,
        env=_serve_environment(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(STEP):
            while b"iotc-translator is running" not in await process.stdout.readline():
                assert process.returncode is None, "serve exited before it was ready"
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_then_start_loses_nothing(emulator: Emulator, rest: RestClient, tmp_path: Path) -> None:
    settings = restartable_settings(emulator, tmp_path / "translator")
    device = SimulatedDevice(
        "term-1", ("127.0.0.1", settings.coap.port), options=SimulatorOptions(**CLIENT_12)
    )
    await device.start()
    try:
        async with _serve(settings) as process:
            assert (await device.register()).code == AioCode.CREATED

            async def settled() -> bool:
                return bool(device.observed) and await asyncio.to_thread(
                    _settled_in_store, settings.store_path, "term-1"
                )

            await eventually(settled, what="the set-up, as the store has it")
            start = await log_position(rest)
            await _notified(rest, device, 61.0, start)
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(STEP):
                assert await process.wait() == 0
        asked = device.requests_received
        async with _serve(settings):
            start = await log_position(rest)
            await _notified(rest, device, 62.0, start)
            assert (await device.send([TEMPERATURE])).code == AioCode.CHANGED
            assert (await device.update()).code == AioCode.CHANGED
            await _notified(rest, device, 63.0, start)
            assert not device.cancelled_by_rst
            assert device.requests_received == asked
    finally:
        await device.close()


# --- NAT rebinding -------------------------------------------------------------------------------------


async def test_after_nat_rebinding_commands_and_sends_reach_the_device(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "nat-1", nat=True) as device:
        await session_connected(translator, "nat-1")
        await _observing(translator, device)
        await device.rebind()
        start = await log_position(rest)
        await _notified(rest, device, 71.0, start)  # the notification moves the registration
        status, body = await rest.request(
            "POST", "/api/devices/nat-1/components/device/commands/reboot", {"request": None}
        )
        assert status == 201 and body["responseCode"] == 200, body  # not 504: it went to the new port
        assert [path for path, _ in device.executed] == [REBOOT]
        assert (await device.send([TEMPERATURE])).code == AioCode.CHANGED
