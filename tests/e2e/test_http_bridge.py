"""The Device Bridge v1 drop-in end to end: an aiohttp client → the translator's HTTP face → DPS, the
session pool, the outbox → the emulator over TLS MQTT. The answers are v1's: 200 once the data is safe,
400 with a reason for a body v1 refuses, 401 without the key; 503 + Retry-After when the outbox is full."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.app import Emulator
from tests.conftest import RestClient, device_template
from tests.e2e.conftest import (
    STEP,
    iso_ms,
    log_position,
    running_translator,
    session_connected,
    telemetry,
)
from tests.e2e.http_ingest import KEY, MODEL, bridge_settings, post, url
from tests.http.samples import TTN_UPLINK
from translator.http.server import TTN_UPLINK_PATH
from translator.serve import Translator


@pytest.fixture
async def bridged(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Translator]:
    # README step 2: the template is published, so a device announcing MODEL is assigned to it.
    emulator.publish_template(MODEL, device_template(MODEL))
    async with running_translator(bridge_settings(emulator, tmp_path / "translator")) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=STEP)) as session:
        yield session


async def test_v1_body_becomes_telemetry_with_its_creation_time_and_model(
    bridged: Translator, client: aiohttp.ClientSession, rest: RestClient
) -> None:
    start = await log_position(rest)
    moment = time.time() - 3600
    body = {
        "device": {"deviceId": "http-1", "modelId": MODEL},
        "measurements": {"temperature": 21.5, "state": "on"},
        "timestamp": iso_ms(moment),
    }
    status, text, _ = await post(client, bridged, body)
    assert status == 200, text
    # 200 came after the hub's PUBACK, or once the message was in the outbox (a new device's session may
    # still be on its way): it arrives either way.
    assert text in ('{"outcome": "published"}', '{"outcome": "kept"}')
    [event] = await telemetry(rest, "http-1", 1, after=start)
    assert event["body"] == {"temperature": 21.5, "state": "on"}
    assert event["properties"]["iothub-creation-time-utc"] == iso_ms(moment)
    _, device = await rest.request("GET", "/api/devices/http-1")
    assert device["template"] == MODEL  # DPS got the request's modelId

    # No timestamp: no creation time of the device's own; the key in the header works as in the query.
    status, text, _ = await post(
        client,
        bridged,
        {"device": {"deviceId": "http-1"}, "measurements": {"temperature": 22}},
        headers={"x-functions-key": KEY},
    )
    assert status == 200, text
    [_, second] = await telemetry(rest, "http-1", 2, after=start)
    assert second["body"] == {"temperature": 22}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"measurements": {"t": 1}}, "device specification"),
        ({"device": {"deviceId": "bad id"}, "measurements": {"t": 1}}, "deviceId"),
        ({"device": {"deviceId": "ends.with."}, "measurements": {"t": 1}}, "deviceId"),
        ({"device": {"deviceId": "x" * 129}, "measurements": {"t": 1}}, "deviceId"),
        ({"device": {"deviceId": "http-2"}, "measurements": [1]}, "measurements"),
        ({"device": {"deviceId": "http-2"}}, "measurements"),
        ({"device": {"deviceId": "http-2"}, "measurements": {"t": 1}, "timestamp": "noon"}, "timestamp"),
    ],
)
async def test_bodies_v1_refuses_are_answered_400_and_reach_nobody(
    bridged: Translator, client: aiohttp.ClientSession, body: object, reason: str
) -> None:
    status, text, _ = await post(client, bridged, body)
    assert (status, reason in text) == (400, True), text
    assert bridged.bridge is not None and not bridged.bridge.lives  # no DPS, no session


async def test_not_json_is_400(bridged: Translator, client: aiohttp.ClientSession) -> None:
    async with client.post(url(bridged), data=b"{not json", params={"code": KEY}) as response:
        assert response.status == 400


@pytest.mark.parametrize(
    ("params", "headers"),
    [({}, {}), ({"code": "wrong"}, {}), ({}, {"x-functions-key": "wrong"}), ({"code": KEY[:-1]}, {})],
)
async def test_the_key_is_checked_before_anything(
    bridged: Translator, client: aiohttp.ClientSession, params: dict[str, str], headers: dict[str, str]
) -> None:
    body = {"device": {"deviceId": "http-3"}, "measurements": {"t": 1}}
    status, _, _ = await post(client, bridged, body, params=params, headers=headers)
    assert status == 401
    status, _, _ = await post(client, bridged, {"device": "nothing valid"}, params=params, headers=headers)
    assert status == 401  # not 400: nothing is said about the body without the key
    assert bridged.bridge is not None and not bridged.bridge.lives


async def test_full_outbox_answers_503_with_retry_after_and_kept_data_arrives(
    emulator: Emulator, rest: RestClient, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """While the hub is away each request is kept (200 once in the outbox); past the device's outbox bound
    the request is refused 503 with Retry-After, so the sender keeps it; the kept ones arrive afterwards."""
    settings = bridge_settings(emulator, tmp_path / "translator", outbox_device_limit=2)
    async with Translator(settings) as translator:

        def reading(n: int) -> dict[str, Any]:
            return {"device": {"deviceId": "http-full"}, "measurements": {"n": n}}

        first = await log_position(rest)
        status, text, _ = await post(client, translator, reading(0))
        assert status == 200, text
        await telemetry(rest, "http-full", 1, after=first)  # published, or kept and replayed since
        await session_connected(translator, "http-full")
        start = await log_position(rest)
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
        assert status == 200
        for n in (1, 2):
            status, text, _ = await post(client, translator, reading(n))
            assert status == 200, text
        assert await translator.store.outbox_depth("http-full") == 2
        status, text, headers = await post(client, translator, reading(3))
        assert status == 503, text
        assert int(headers["Retry-After"]) > 0

        await rest.request("POST", "/emulator/faults/clear")
        events = await telemetry(rest, "http-full", 2, after=start, timeout=30)
        assert [e["body"]["n"] for e in events] == [1, 2]


async def test_ttn_uplink_webhook(
    bridged: Translator, client: aiohttp.ClientSession, rest: RestClient
) -> None:
    start = await log_position(rest)
    status, text, _ = await post(
        client, bridged, TTN_UPLINK, path=TTN_UPLINK_PATH, params={"code": KEY, "modelId": MODEL}
    )
    assert status == 200, text
    [event] = await telemetry(rest, "eui-0004a30b001c0530", 1, after=start)
    assert event["body"] == {"temperature": 21.5, "humidity": 40}
    assert event["properties"]["iothub-creation-time-utc"] == "2026-02-12T15:15:45.787Z"
    _, device = await rest.request("GET", "/api/devices/eui-0004a30b001c0530")
    assert device["template"] == MODEL
    status, text, _ = await post(client, bridged, {"end_device_ids": {}}, path=TTN_UPLINK_PATH)
    assert status == 400, text
