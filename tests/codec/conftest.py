"""Shared fixtures: object registries, the shipped codecs, and Microsoft's DTDL parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.codec.dtdl_parser import ParserUnavailable, ensure_parser
from tests.conftest import SHARED
from translator.lwm2m import ObjectRegistry

REPO = Path(__file__).resolve().parents[2]
CODECS = sorted((REPO / "codecs").glob("*.toml"))
REGISTRY_DIR = SHARED / "lwm2m-registry"


@pytest.fixture(scope="session")
def registry() -> ObjectRegistry:
    return ObjectRegistry.builtin()


@pytest.fixture(scope="session")
def full_registry() -> ObjectRegistry:
    if not REGISTRY_DIR.is_dir():
        pytest.skip(f"OMA registry not found at {REGISTRY_DIR}")
    return ObjectRegistry.with_ddf_directory(REGISTRY_DIR)


@pytest.fixture(scope="session")
def dtdl_parser(request: pytest.FixtureRequest) -> Path:
    try:
        return ensure_parser(request.config)
    except ParserUnavailable as exc:
        pytest.skip(str(exc))
