"""What the e2e tests of several translators on one Redis share: a node's settings, a Send of one reading,
the readings at the hub."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiocoap
from aiocoap.numbers.codes import Code as AioCode

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.clients import TEMPERATURE
from tests.e2e.conftest import (
    STEP,
    restartable_settings,
)
from translator.coap.simulator import SimulatedDevice
from translator.lwm2m import ContentFormat, Record, encode
from translator.lwm2m import Path as Lwm2mPath
from translator.settings import Settings


def node_settings(emulator: Emulator, state: Path, url: str, node: str) -> Settings:
    settings = restartable_settings(emulator, state)
    return replace(settings, store=replace(settings.store, redis_url=url, node_id=node))


async def reading(device: SimulatedDevice, value: float) -> Any:
    """A CON Send of one temperature; the response (2.04 only once the data is safe)."""
    payload = encode(
        ContentFormat.SENML_JSON,
        [Record(TEMPERATURE, value, time.time())],
        base_path=Lwm2mPath(),
        registry=device.registry,
    )
    message = aiocoap.Message(
        code=AioCode.POST, uri=device._uri("dp"), content_format=ContentFormat.SENML_JSON, payload=payload
    )
    return await device._send(message, timeout=STEP)


async def arrived(rest: RestClient, device_id: str, after: int) -> set[float]:
    events = await rest.get(f"/emulator/telemetry?deviceId={device_id}&after={after}")
    return {e["body"]["temperature"] for e in events["value"] if "temperature" in e["body"]}
