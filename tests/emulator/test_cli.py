"""`python -m emulator` as a real process: ready line, SIGTERM, configuration errors, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import REPO
from tests.emulator.clients import RawClient, client_tls

START_TIMEOUT = 20.0


def read_bytes(path: Path) -> bytes:
    """Small local files; a blocking read is fine in a test."""
    return path.read_bytes()


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("IOTC_EMULATOR_")}
    env.update(extra)
    return env


async def start(state_dir: Path, *args: str) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator",
        "--state-dir",
        str(state_dir),
        "--mqtt-port",
        "0",
        "--http-port",
        "0",
        "--https-port",
        "0",
        *args,
        cwd=REPO,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                line = await process.stdout.readline()
                assert line, "emulator exited before it was ready"
                event: dict[str, Any] = json.loads(line)
                if event.get("event") == "ready":
                    return process, event
    except BaseException:
        process.kill()
        await process.wait()
        raise


async def stop(process: asyncio.subprocess.Process) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        _, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_ready_line_sigterm_and_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    process, ready = await start(state)
    try:
        assert ready["idScope"].startswith("0ne")
        assert ready["mqttPort"] > 0
        assert ready["httpPort"] > 0
        ca = Path(ready["caPath"])
        ca_bytes = read_bytes(ca)
        # The REST API and the TLS MQTT listener answer.
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{ready['httpPort']}/emulator/info"
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                assert response.status == 200
                assert (await response.json())["idScope"] == ready["idScope"]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            ready["mqttPort"],
            ssl=client_tls(ca),
            server_hostname="localhost",
        )
        client = RawClient(reader, writer)
        code, _ = await client.connect("x", "nobody", None)
        assert code == 4  # neither a DPS nor a hub username
        await client.close()
    finally:
        code, stderr = await stop(process)
    assert code == 0, stderr
    assert "emulator stopped" in stderr
    assert (state / "application.json").is_file()

    process, again = await start(state)
    code, _ = await stop(process)
    assert code == 0
    for name in ("idScope", "groupPrimaryKey", "groupSecondaryKey", "caPath"):
        assert again[name] == ready[name], name
    assert read_bytes(Path(again["caPath"])) == ca_bytes


@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        (["--mqtt-port", "70000"], {}, "mqtt_port"),
        (["--group-primary-key", "not*base64"], {}, "group_primary_key"),
        ([], {"IOTC_EMULATOR_HTTP_PORT": "eighty"}, "http_port"),
    ],
)
async def test_bad_setting_exits_2(
    tmp_path: Path, args: list[str], env: dict[str, str], setting: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator",
        "--state-dir",
        str(tmp_path / "state"),
        *args,
        cwd=REPO,
        env=clean_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(START_TIMEOUT):
        stdout, stderr = await process.communicate()
    assert process.returncode == 2
    assert setting in stderr.decode()
    assert b"ready" not in stdout
    assert not (tmp_path / "state").exists()  # nothing was created
