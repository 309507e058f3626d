"""Shared fixtures: a real emulator on loopback ports, and a REST client for it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.environment import unmet_requirements
from tests.install_progress import installing

_UNMET = unmet_requirements(Path(__file__).resolve().parents[1] / "pyproject.toml")
if _UNMET:
    pytest.exit(
        "this interpreter lacks what pyproject.toml requires: "
        + "; ".join(_UNMET)
        + ". Run `make venv` (or `pip install -e '.[dev]'`), then the tests with .venv/bin/pytest.",
        returncode=4,
    )

import aiohttp  # noqa: E402  (after the check: a missing dependency is named, not a traceback)

from emulator.app import Emulator  # noqa: E402
from emulator.config import EmulatorConfig  # noqa: E402

# aiocoap sets SO_REUSEPORT on every UDP socket it binds, unless AIOCOAP_REUSE_PORT=0 (read at each bind).
# On Linux a port-0 bind with SO_REUSEPORT may be given a port that another SO_REUSEPORT socket of the same
# user already holds: two simulated devices (or a device and another process's socket) then share the port,
# the kernel hands each datagram for it to just one of them, and the other never hears its answers (100
# devices on port 0: a shared port in ~1 run in 6, more when other processes hold many UDP ports; the fleet
# test then lost a Register). A socket a test binds must be its own.
os.environ["AIOCOAP_REUSE_PORT"] = "0"

REPO = Path(__file__).resolve().parents[1]
# The reference material beside the checkout (captured wire vectors, the OMA registry). A clone alone has
# none: those tests skip. IOTC_TRANSLATOR_TEST_SHARED points elsewhere (tests/test_clone_alone.py uses it).
SHARED = Path(os.environ.get("IOTC_TRANSLATOR_TEST_SHARED", REPO.parent / "shared"))
SDK_VENV = REPO / ".cache" / "sdk-venv"
SDK_REQUIREMENT = "azure-iot-device==2.14.0"

TEST_GROUP_KEY = base64.b64encode(b"emulator-test-group-key-0123456789abcdef" * 2).decode()
TEST_SECONDARY_KEY = base64.b64encode(b"emulator-test-secondary-key-0123456789ab" * 2).decode()


def emulator_config(state_dir: Path, **overrides: Any) -> EmulatorConfig:
    settings: dict[str, Any] = {
        "state_dir": state_dir,
        "mqtt_port": 0,
        "http_port": 0,
        "https_port": 0,
        "id_scope": "0neTEST0001",
        "group_primary_key": TEST_GROUP_KEY,
        "group_secondary_key": TEST_SECONDARY_KEY,
        "hub_names": ("hub-a.azure-devices.net", "hub-b.azure-devices.net"),
        "dps_retry_after": 1,
        "dps_assign_delay": 0.2,
        "method_timeout": 5.0,
    }
    settings.update(overrides)
    return EmulatorConfig(**settings).validated()


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    async with Emulator(emulator_config(tmp_path / "emulator")) as running:
        yield running


API_VERSION = "2022-07-31"


class RestClient:
    """Thin JSON client for the emulator's REST API. IoT Central's paths (`/api/...`) get what IoT Central
    requires of every call: the API token and `api-version`."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str = "") -> None:
        self.session = session
        self.base = base
        self.token = token

    def url(self, path: str) -> str:
        if path.startswith("/api/") and "api-version=" not in path:
            path += ("&" if "?" in path else "?") + f"api-version={API_VERSION}"
        return self.base + path

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        sent = {"Authorization": self.token} if self.token and path.startswith("/api/") else {}
        async with self.session.request(
            method,
            self.url(path),
            json=body,
            headers={**sent, **(headers or {})},
            timeout=aiohttp.ClientTimeout(total=90),
        ) as response:
            text = await response.text()
            payload = await response.json(content_type=None) if text else None
            return response.status, payload

    async def get(self, path: str) -> Any:
        status, payload = await self.request("GET", path)
        assert status == 200, (path, status, payload)
        return payload


@pytest.fixture
async def rest(emulator: Emulator) -> AsyncIterator[RestClient]:
    async with aiohttp.ClientSession() as session:
        yield rest_client(session, emulator)


def rest_client(session: aiohttp.ClientSession, emulator: Emulator) -> RestClient:
    return RestClient(session, f"http://127.0.0.1:{emulator.http_port}", emulator.api_token())


def device_template(model_id: str, contents: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A device template body for `PUT /api/deviceTemplates/{model_id}` (what step 2 publishes)."""
    from emulator.templates import from_interfaces

    root = {"@id": model_id, "@type": "Interface", "contents": contents or []}
    return from_interfaces([{"@context": "dtmi:dtdl:context;2", **root}])


def ensure_sdk_venv(config: pytest.Config | None = None) -> Path:
    """Microsoft's device SDK in its own virtual environment (it pins paho-mqtt < 2), created once."""
    python = SDK_VENV / "bin" / "python"
    marker = SDK_VENV / ".installed"
    if not marker.exists():
        with installing(f"Microsoft's device SDK ({SDK_REQUIREMENT}) into {SDK_VENV}", config):
            subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True, timeout=300)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", SDK_REQUIREMENT],
                check=True,
                timeout=600,
                env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            )
        marker.write_text(SDK_REQUIREMENT + "\n")
    return python


@pytest.fixture(scope="session")
def sdk_python(request: pytest.FixtureRequest) -> Path:
    return ensure_sdk_venv(request.config)
