"""`serve --workers 2` (issue 17 §6) as a real process: a supervisor with the embedded emulator, two
workers on one SO_REUSEPORT CoAP socket and a real redis-server. Devices sending from many source ports are
spread over both workers (the per-worker metrics show it) and all their telemetry lands; a worker killed
with SIGKILL is started again by the supervisor and its devices recover (a Send that lands on a worker
without the device's registration is refused 4.04: the device registers again, as LwM2M clients do); SIGTERM
stops the supervisor and every worker within a bound."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiocoap.numbers.codes import Code as AioCode

from tests.conftest import REPO, RestClient
from tests.e2e.conftest import STEP, eventually
from tests.redis_server import RedisServer, needs_redis
from translator.coap.simulator import SimulatedDevice, default_values
from translator.lwm2m import Path as Lwm2mPath

pytestmark = needs_redis

DEVICES = 16  # all on one worker by chance: 2 / 2^16
TEMPERATURE = Lwm2mPath(3303, 0, 5700)
READY = b"iotc-translator is running."
STOP_BOUND = 30.0


def _config(state: Path, redis_url: str) -> str:
    return f"""
state_dir = "{state}"
workers = 2

[coap]
host = "127.0.0.1"
port = 0
dtls_port = 0
grace = 0.0
tick = 0.1
sink_timeout = 8.0

[iotc]
connect_rate = 1000.0
telemetry_timeout = 2.0
reconnect_min = 0.2
reconnect_max = 2.0

[store]
redis_url = "{redis_url}"
heartbeat_ttl = 3.0

[codec]
directory = "{REPO / "codecs"}"

[operations]
port = 0

[emulator]
mqtt_port = 0
http_port = 0
https_port = 0
"""


@dataclass
class Running:
    process: asyncio.subprocess.Process
    coap: tuple[str, int]
    operations: str
    rest: str
    token: str
    log: Path


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern!r} not in the banner:\n{text}"
    return match.group(1)


@contextlib.asynccontextmanager
async def workers(tmp_path: Path, redis_url: str) -> AsyncIterator[Running]:
    config = tmp_path / "translator.toml"
    config.write_text(_config(tmp_path / "state", redis_url))
    log = tmp_path / "translator.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "translator.cli",
            "serve",
            "--config",
            str(config),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert process.stdout is not None
        banner = b""
        async with asyncio.timeout(90):
            while READY not in banner:
                line = await process.stdout.readline()
                assert line, f"serve --workers 2 exited at start; see {log}"
                banner = line
            while b"curl" not in banner:  # the embedded emulator's lines close the banner
                line = await process.stdout.readline()
                assert line, f"serve --workers 2 exited at start; see {log}"
                banner += line
        text = banner.decode()
        yield Running(
            process,
            ("127.0.0.1", int(_found(r"LwM2M server:\s+coap://127\.0\.0\.1:(\d+)", text))),
            _found(r"metrics / health:\s+(http://[\d.]+:\d+)/metrics", text),
            _found(r"REST on (http://[\d.]+:\d+)/api", text),
            _found(r"Authorization: ([^']+)'", text),
            log,
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _text(session: aiohttp.ClientSession, url: str) -> str:
    async with asyncio.timeout(STEP), session.get(url) as response:
        return await response.text()


async def _health(session: aiohttp.ClientSession, running: Running) -> dict[str, Any]:
    async with asyncio.timeout(STEP), session.get(f"{running.operations}/healthz") as response:
        return dict(await response.json())


def _per_worker(exposition: str, sample: str) -> dict[str, float]:
    """worker index → value of `sample` (a name with its labels but the worker's)."""
    name, _, labels = sample.partition("{")
    found: dict[str, float] = {}
    for line in exposition.splitlines():
        match = re.match(rf'{re.escape(name)}\{{(.*)worker="(\d+)"\}} (\S+)', line)
        if match and match.group(1).rstrip(",") == labels.rstrip("}"):
            found[match.group(2)] = float(match.group(3))
    return found


async def _send(device: SimulatedDevice, value: float) -> Any:
    device.set_value(TEMPERATURE, value)
    return await device.send([TEMPERATURE])


async def _send_registered(device: SimulatedDevice, value: float) -> None:
    """A Send; refused 4.04 (this worker has no registration of the device), a Register and the Send again."""
    response = await _send(device, value)
    if response.code == AioCode.NOT_FOUND:
        registered = await device.register()
        assert registered.code.is_successful(), registered
        response = await _send(device, value)
    assert response.code == AioCode.CHANGED, (device.endpoint, response.code, response.payload)


async def _landed(rest: RestClient, expected: dict[str, set[float]], timeout: float) -> None:
    """Every expected temperature of every device is in the emulator's telemetry log (duplicates allowed)."""
    seen: dict[str, set[float]] = {name: set() for name in expected}
    after = 0

    async def all_there() -> bool:
        nonlocal after
        log = await rest.get(f"/emulator/telemetry?after={after}&wait=1")
        after = int(log["next"])
        for event in log["value"]:
            value = event["body"].get("temperature")
            if event["deviceId"] in seen and isinstance(value, int | float):
                seen[event["deviceId"]].add(float(value))
        missing = {name: sorted(want - seen[name]) for name, want in expected.items() if want - seen[name]}
        assert not missing, f"not delivered: {missing}"
        return True

    await eventually(all_there, timeout=timeout, interval=0.2, what="every acknowledged Send at the hub")


async def test_workers_share_the_port_survive_a_kill_and_stop_on_sigterm(tmp_path: Path) -> None:
    async with (
        RedisServer(tmp_path / "redis") as redis,
        workers(tmp_path, redis.url) as running,
        aiohttp.ClientSession() as session,
    ):
        rest = RestClient(session, running.rest, running.token)
        fleet = [
            SimulatedDevice(f"wk-{i:02d}", running.coap, values={**default_values(), TEMPERATURE: 20.0})
            for i in range(DEVICES)
        ]
        expected: dict[str, set[float]] = {device.endpoint: set() for device in fleet}
        try:
            async with asyncio.timeout(90):
                await asyncio.gather(*(device.start() for device in fleet))  # a source port each
                registered = await asyncio.gather(*(device.register() for device in fleet))
                assert all(response.code.is_successful() for response in registered), registered

                async def stream(device: SimulatedDevice, values: range) -> None:
                    for value in values:
                        await _send_registered(device, float(value))
                        expected[device.endpoint].add(float(value))

                await asyncio.gather(*(stream(device, range(100, 105)) for device in fleet))
            await _landed(rest, expected, timeout=60)

            # Both workers took devices: the kernel spread the source ports over the two sockets.
            exposition = await _text(session, f"{running.operations}/metrics/workers")
            sends = _per_worker(exposition, 'iotc_translator_messages_in_total{source="send"}')
            assert set(sends) == {"0", "1"} and all(count > 0 for count in sends.values()), sends
            summed = await _text(session, f"{running.operations}/metrics")
            total = re.search(r'^iotc_translator_messages_in_total\{source="send"\} (\S+)', summed, re.M)
            assert total is not None and float(total.group(1)) == sum(sends.values())
            health = await _health(session, running)
            assert health["status"] == "ok" and health["devices"] == DEVICES, health
            # The emulator runs once, in the supervisor, and still publishes the template each worker built
            # for its devices (README step 2 done for the user, as with one process).
            for device in fleet:
                view = await rest.get(f"/api/devices/{device.endpoint}")
                assert str(view.get("template", "")).startswith("dtmi:"), view

            # SIGKILL one worker: the supervisor starts it again, and its devices recover.
            victim = health["workers"][0]
            os.kill(victim["pid"], signal.SIGKILL)

            async def restarted() -> bool:
                health = await _health(session, running)
                worker = health["workers"][0]
                assert worker["restarts"] == 1 and worker["pid"] != victim["pid"], worker
                return bool(health["status"] == "ok")

            await eventually(restarted, timeout=60, interval=0.2, what="worker 0 restarted")
            async with asyncio.timeout(120):
                await asyncio.gather(*(stream(device, range(200, 205)) for device in fleet))
            await _landed(rest, expected, timeout=90)
            pids = [worker["pid"] for worker in (await _health(session, running))["workers"]]
        finally:
            for device in fleet:
                await device.close()

        # SIGTERM: the supervisor passes it on and everything is gone within the bound.
        running.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(STOP_BOUND):
            status = await running.process.wait()
        assert status == 0, running.log.read_text()[-3000:]
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


async def test_a_worker_that_cannot_start_stops_the_supervisor_non_zero(tmp_path: Path) -> None:
    """No Redis where the settings say: worker 0 fails at start, and `serve` exits 1 — no restart loop."""
    config = tmp_path / "translator.toml"
    with contextlib.closing(__import__("socket").socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"  # nothing listens once closed
    config.write_text(_config(tmp_path / "state", dead))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "translator.cli",
        "serve",
        "--config",
        str(config),
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 1, stderr.decode()[-2000:]
    assert b"worker 0 did not start" in stderr
