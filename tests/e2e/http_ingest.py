"""The HTTP ingest endpoint as e2e tests drive it: its key, a model, a translator with it on, a POST."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from emulator.app import Emulator
from tests.e2e.conftest import (
    translator_settings,
)
from translator.http.server import V1_PATH
from translator.serve import Translator
from translator.settings import HttpSettings, Settings

KEY = "bridge-test-key"


MODEL = "dtmi:acme:httpSensor;1"


def bridge_settings(emulator: Emulator, state_dir: Path, **store: Any) -> Settings:
    settings = translator_settings(emulator, state_dir)
    return replace(
        settings,
        http=HttpSettings(enabled=True, port=0, key=KEY, timeout=10.0),
        store=replace(settings.store, **store),
    )


async def post(
    client: aiohttp.ClientSession,
    translator: Translator,
    body: object,
    *,
    path: str = V1_PATH,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, Mapping[str, str]]:
    params = {"code": KEY} if params is None and headers is None else params
    async with client.post(url(translator, path), json=body, params=params, headers=headers) as response:
        return response.status, await response.text(), response.headers


def url(translator: Translator, path: str = V1_PATH) -> str:
    assert translator.http is not None
    return f"http://127.0.0.1:{translator.http.port}{path}"
