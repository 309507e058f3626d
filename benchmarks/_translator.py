"""Starting a translator under a benchmark: the settings that aim it at the benchmark's emulator, and the
wait for its operations endpoint (bench_throughput's lone translator and bench_workers' `serve`)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def emulator_env(emulator: dict[str, Any], connect_rate: float, max_sessions: int) -> dict[str, str]:
    """IOTC_TRANSLATOR_* settings for the emulator's `ready` line, the translator's own pacers open: the
    emulator runs with --no-limits, and a benchmark measures the translator, not IoT Central's quotas."""
    return {
        "IOTC_TRANSLATOR_IOTC_ID_SCOPE": emulator["idScope"],
        "IOTC_TRANSLATOR_IOTC_GROUP_KEY": emulator["groupPrimaryKey"],
        "IOTC_TRANSLATOR_IOTC_DPS_HOST": "127.0.0.1",
        "IOTC_TRANSLATOR_IOTC_DPS_PORT": str(emulator["mqttPort"]),
        "IOTC_TRANSLATOR_IOTC_HUB_PORT": str(emulator["mqttPort"]),
        "IOTC_TRANSLATOR_IOTC_CA_FILE": emulator["caPath"],
        "IOTC_TRANSLATOR_IOTC_GATEWAY_HOST": "127.0.0.1",
        # The emulator is configured as a real IoT Central: the load generator's devices have no PSKs.
        "IOTC_TRANSLATOR_COAP_INSECURE_AUTO_REGISTER": "true",
        "IOTC_TRANSLATOR_IOTC_CONNECT_RATE": str(connect_rate),
        "IOTC_TRANSLATOR_IOTC_MAX_SESSIONS": str(max_sessions),
        "IOTC_TRANSLATOR_IOTC_DPS_REGISTRATIONS_PER_MINUTE": "0",
        "IOTC_TRANSLATOR_IOTC_TELEMETRY_RATE": "0",
        "IOTC_TRANSLATOR_IOTC_DEVICE_TELEMETRY_RATE": "0",
        "IOTC_TRANSLATOR_IOTC_TWIN_UPDATE_RATE": "0",
    }


def wait_healthy(process: subprocess.Popen[Any], out: Path, ops: str, seconds: float, what: str) -> None:
    """Until `ops`/healthz answers; the process's last output in the error if it exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            http_json(f"{ops}/healthz", 1)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {out.read_text()[-3000:]}") from None
            time.sleep(0.1)
