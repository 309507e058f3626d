"""The translator as a real process (`iotc-translator serve`), so a test can kill it — SIGKILL at any
point, or SIGTERM — and start it again on the same state directory and port."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from emulator.app import Emulator
from tests.conftest import REPO

READY = b"iotc-translator is running."


def _config(emulator: Emulator, state_dir: Path, port: int) -> str:
    assert emulator.tls is not None
    application = emulator.application
    return f"""
state_dir = "{state_dir}"
log_level = "INFO"

[coap]
host = "127.0.0.1"
port = {port}
dtls_port = 0
insecure_auto_register = true
grace = 0.0
tick = 0.1
sink_timeout = 8.0

[iotc]
id_scope = "{application.id_scope}"
group_key = "{application.group_primary_key}"
dps_host = "127.0.0.1"
dps_port = {emulator.mqtt_port}
hub_port = {emulator.mqtt_port}
ca_file = "{emulator.tls.ca_path}"
gateway_host = "127.0.0.1"
connect_rate = 1000.0
telemetry_timeout = 2.0
reconnect_min = 0.2
reconnect_max = 2.0

[codec]
directory = "{REPO / "codecs"}"

[ephemeral]
hub_https_port = {emulator.https_port}

[operations]
port = 0
"""


class TranslatorProcess:
    def __init__(self, emulator: Emulator, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        state_dir.mkdir(parents=True, exist_ok=True)
        self.config = state_dir.parent / "translator.toml"
        self.config.write_text(_config(emulator, state_dir, port))
        self.log = state_dir.parent / "translator.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    async def start(self, timeout: float = 30.0) -> None:
        assert self.process is None
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "translator.cli",
                "serve",
                "--config",
                str(self.config),
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        self.starts += 1
        stdout = self.process.stdout
        assert stdout is not None
        async with asyncio.timeout(timeout):
            while READY not in await stdout.readline():
                if stdout.at_eof():
                    raise AssertionError(f"the translator exited at start; see {self.log}")

    async def stop(self, signum: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> int:
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.returncode is None:
            process.send_signal(signum)
        try:
            async with asyncio.timeout(timeout):
                return await process.wait()
        except TimeoutError:
            process.kill()
            return await process.wait()
