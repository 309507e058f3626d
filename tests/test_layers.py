"""The layer rules: a pure module imported alone loads no event loop, TLS, CoAP stack or database driver.

Each module is imported in a fresh interpreter (this process has long since loaded everything), so what it
drags in is exactly what `sys.modules` shows afterwards.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import pytest

import translator.codec
import translator.iotc.protocol
import translator.lwm2m

# Never loaded by importing a pure module: the I/O stacks.
FORBIDDEN = ("asyncio", "ssl", "socket", "aiocoap", "aiosqlite", "aiomqtt", "redis")

# Every module of these packages is pure, including any added later.
PURE_PACKAGES = (translator.lwm2m, translator.codec, translator.iotc.protocol)

# Pure modules of packages that also hold I/O shells.
PURE_MODULES = (
    "translator.coap",
    "translator.coap.dedup",
    "translator.coap.device_id",
    "translator.coap.errors",
    "translator.coap.gate",
    "translator.coap.gatekeeper",
    "translator.coap.hooks",
    "translator.coap.identity",
    "translator.coap.ingest",
    "translator.coap.lifetime",
    "translator.coap.memo",
    "translator.coap.negotiation",
    "translator.coap.observe",
    "translator.coap.queue",
    "translator.coap.ratelog",
    "translator.coap.registration",
    "translator.coap.requests",
    "translator.coap.routes",
    "translator.coap.statuses",
    "translator.coap.dtls.records",
    "translator.coap.settings",
    "translator.coap.sink",
    "translator.coap.snapshot",
    "translator.coap.wire",
    "translator.iotc",
    "translator.iotc.client",
    "translator.store",
    "translator.store.base",
    "translator.store.factory",
    "translator.cluster",
    "translator.cluster.ownership",
    "translator.cluster.relay_policy",
    "translator.http",
    "translator.http.ttn",
    "translator.http.v1",
    "translator.gateway",
    "translator.gateway.settings",
    "translator.gateway.model",
    "translator.gateway.health",
    "translator.ops.logs",
    "translator.private_files",
    "translator.settings",
    "translator.settings_codec",
    "translator.settings_ephemeral",
    "translator.settings_http",
    "translator.settings_iotc",
    "translator.settings_operations",
    "translator.settings_store",
    "translator.settings_types",
)


def _modules_of(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return [package.__name__] + [m.name for m in pkgutil.walk_packages(path, prefix)]  # type: ignore[attr-defined]


def pure_modules() -> list[str]:
    found = [name for package in PURE_PACKAGES for name in _modules_of(package)]
    return sorted({*found, *PURE_MODULES})


def loaded_after_import(module: str) -> list[str]:
    probe = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.mark.parametrize("module", pure_modules())
def test_a_pure_module_loads_no_io_stack(module: str) -> None:
    loaded = loaded_after_import(module)
    dragged = sorted({name.split(".")[0] for name in loaded} & set(FORBIDDEN))
    assert not dragged, f"importing {module} loads {', '.join(dragged)}"


def test_settings_load_only_the_coap_settings() -> None:
    # The top-level settings describe the CoAP face with its plain dataclass, nothing else of the face.
    coap = [name for name in loaded_after_import("translator.settings") if name.startswith("translator.coap")]
    assert coap == ["translator.coap", "translator.coap.settings"]


def test_the_codec_layer_uses_only_the_pure_protocol_of_the_iotc_face() -> None:
    # docs/codec.md: the mapper builds IoT Central's documents with iotc/protocol, and nothing else of a face.
    loaded = loaded_after_import("translator.codec")
    faces = ("translator.iotc.client", "translator.coap", "translator.store", "translator.bridge")
    assert [name for name in loaded if name.startswith(faces)] == []


@pytest.mark.parametrize("package", ["translator.coap", "translator.store"])
def test_every_lazy_export_resolves(package: str) -> None:
    module = importlib.import_module(package)
    lazy = getattr(module, "_EXPORTS", None)
    if lazy is not None:
        assert set(lazy) == set(module.__all__), "_EXPORTS and __all__ must name the same things"
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
