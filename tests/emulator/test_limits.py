"""The emulator's service limits (emulator/limits.py), over TLS MQTT and REST, with the numbers Microsoft
documents (cited in emulator/limits.py) or, where waiting a minute for a quota would be silly, lowered."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.app import Emulator
from emulator.config import ConfigError, load_config
from emulator.limits import Bucket, LimitSettings, ServiceLimits, tier_rate
from tests.conftest import RestClient, emulator_config
from tests.emulator.clients import (
    PUBACK,
    STEP,
    RawClient,
    dps_client,
    hub_client,
    hub_token,
    hub_username,
    next_message,
    parse_response,
    primary_key,
    provision,
    publish_packet,
    register,
    telemetry_after,
    telemetry_mark,
)


@asynccontextmanager
async def running(tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[Emulator, RestClient]]:
    # These tests fill quotas through the REST API faster than its own 20 requests/s (tested elsewhere).
    overrides.setdefault("rest_rate_limit", 0)
    config = emulator_config(tmp_path / "emulator", **overrides)
    async with Emulator(config) as emulator, aiohttp.ClientSession() as session:
        yield emulator, RestClient(session, f"http://127.0.0.1:{emulator.http_port}", emulator.api_token())


async def connect_raw(emulator: Emulator, hub: str, device_id: str) -> tuple[RawClient, int]:
    client = await RawClient.open(emulator, server_hostname=hub)
    token = hub_token(hub, device_id, primary_key(emulator, device_id))
    code, _ = await client.connect(device_id, hub_username(hub, device_id), token)
    return client, code


# -- pure ---------------------------------------------------------------------------------------------


def test_tier_rates_follow_the_quotas_page() -> None:
    assert tier_rate("S1", 1) == 100  # the higher of 100/s or 12/s/unit
    assert tier_rate("S1", 9) == 108
    assert tier_rate("S2", 2) == 240
    assert tier_rate("S3", 1) == 6000
    with pytest.raises(ValueError, match="unknown IoT Hub tier"):
        tier_rate("S9", 1)


def test_config_defaults_are_the_real_numbers_and_one_flag_turns_them_off() -> None:
    limits = load_config(environ={}).limit_settings()
    assert limits == LimitSettings(
        enabled=True,
        dps_registrations_per_minute=200,
        hub_connects_per_second=100,
        d2c_per_second=100,
        device_messages_per_second=10,
        property_updates_per_second=100,
        reported_section_bytes=32 * 1024,
        property_bytes=4 * 1024,
        method_payload_bytes=128 * 1024,
        c2d_message_bytes=64 * 1024,
        c2d_queue_depth=50,
    )
    assert not load_config(environ={"IOTC_EMULATOR_LIMITS": "false"}).limit_settings().enabled
    assert load_config(environ={}, overrides={"hub_tier": "S3"}).limit_settings().d2c_per_second == 6000
    with pytest.raises(ConfigError, match="hub_tier"):
        load_config(environ={}, overrides={"hub_tier": "X1"})


def test_bucket_shapes_until_the_backlog_is_full() -> None:
    now = [0.0]
    bucket = Bucket(2.0, 2.0, lambda: now[0])
    assert [bucket.shape(1.0) for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    assert bucket.shape(1.0) is None  # 1.5 s behind: rejected, and nothing taken
    now[0] = 0.5
    assert bucket.shape(1.0) == 1.0


def test_hub_send_rate_is_per_hub_and_shared_by_its_devices() -> None:
    now = [0.0]
    limits = ServiceLimits(
        LimitSettings(d2c_per_second=3, device_messages_per_second=100, shaping_seconds=0.5), lambda: now[0]
    )
    delays = [limits.telemetry("hub-a", f"device-{n}") for n in range(5)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3] == pytest.approx(1 / 3)
    assert delays[4] is None
    assert limits.telemetry("hub-b", "device-0") == 0.0  # another hub has its own throttle
    assert limits.refused == {"hub_telemetry": 1}


def test_disabled_limits_admit_everything() -> None:
    limits = ServiceLimits(LimitSettings(enabled=False, dps_registrations_per_minute=1), lambda: 0.0)
    assert all(limits.dps_registration() == 0.0 for _ in range(10))
    assert limits.telemetry("hub", "device") == 0.0
    limits.check_c2d("x" * 100_000, 1000)
    assert limits.reported_problem({"big": "x" * 10_000}, {"big": "x" * 10_000}) == ""


# -- over the wire ------------------------------------------------------------------------------------


async def test_dps_registrations_over_the_quota_are_429_with_retry_after(tmp_path: Path) -> None:
    async with running(tmp_path, dps_registrations_per_minute=2) as (emulator, _):
        for device_id in ("quota-1", "quota-2"):
            await provision(emulator, device_id)
        async with dps_client(emulator, "quota-3") as client:
            response = await register(client, "quota-3")
    assert response.status == 429
    assert response.body["errorCode"] == 429001
    # A token comes back every 30 s at 2/min: DPS asks for at most that long.
    assert 1 <= int(response.query["retry-after"]) <= 30
    assert emulator.limits.refused == {"dps_registration": 1}


async def test_new_connections_over_the_hub_rate_get_connack_3(tmp_path: Path) -> None:
    async with running(tmp_path, hub_connects_per_second=2) as (emulator, _):
        devices = [f"connect-{n}" for n in range(3)]
        hubs = [await provision(emulator, device_id) for device_id in devices]
        # Both hubs of the fixture get their own throttle: put the three devices on one.
        for device_id in devices:
            emulator.application.device(device_id).assigned_hub = hubs[0]  # type: ignore[union-attr]
        codes = []
        clients = []
        for device_id in devices:
            client, code = await connect_raw(emulator, hubs[0], device_id)
            clients.append(client)
            codes.append(code)
        for client in clients:
            await client.close()
    assert codes == [0, 0, 3]  # CONNACK 3: server unavailable


async def test_device_telemetry_is_shaped_then_the_connection_dropped(tmp_path: Path) -> None:
    async with running(tmp_path, device_messages_per_second=2, shaping_seconds=1.0) as (emulator, rest):
        device_id = "chatty"
        hub = await provision(emulator, device_id)
        mark = await telemetry_mark(rest)
        client, code = await connect_raw(emulator, hub, device_id)
        assert code == 0
        topic = f"devices/{device_id}/messages/events/"
        try:
            started = time.monotonic()
            acked: dict[int, float] = {}
            for packet_id in range(1, 5):
                await client.send(publish_packet(topic, b'{"n": %d}' % packet_id, qos=1, packet_id=packet_id))
            for _ in range(4):
                packet = await client.expect(PUBACK, timeout=STEP)
                acked[packet.packet_id] = time.monotonic() - started
            # Two at once (the burst), then one every half second: traffic shaping, nothing refused.
            assert acked[1] < 0.4 and acked[2] < 0.4
            assert acked[3] >= 0.4 and acked[4] >= 0.9
            # The bucket is empty again by now: of three more at once, the third would be 1.5 s behind, over
            # the 1 s backlog: IoT Hub throttles, and over MQTT the connection ends.
            for packet_id in range(5, 8):
                await client.send(publish_packet(topic, b'{"n": %d}' % packet_id, qos=1, packet_id=packet_id))
            await client.expect_closed()
        finally:
            await client.close()
        events = await telemetry_after(rest, device_id, mark)
    assert [event["body"]["n"] for event in events] == [1, 2, 3, 4, 5, 6]
    assert emulator.limits.refused == {"device_telemetry": 1}


async def test_reported_patch_size_limits(tmp_path: Path) -> None:
    async with running(tmp_path) as (emulator, _):
        device_id = "big-twin"
        hub = await provision(emulator, device_id)
        async with hub_client(emulator, hub, device_id) as client:
            await client.subscribe("$iothub/twin/res/#", qos=0)

            async def patch(body: dict[str, Any], rid: int) -> int:
                topic = f"$iothub/twin/PATCH/properties/reported/?$rid={rid}"
                await client.publish(topic, json.dumps(body).encode(), qos=0)
                return parse_response(await next_message(client)).status

            # One property over 4 KB is refused; one just under passes.
            assert await patch({"one": "x" * 4100}, 1) == 413
            assert await patch({"comp": {"__t": "c", "inner": "x" * 4100}}, 2) == 413
            assert await patch({"one": "x" * 4000}, 3) == 204
            # Eight properties of 4,000 bytes fill the 32 KB section; a ninth would take it over.
            for n in range(2, 9):
                assert await patch({f"p{n}": "x" * 4000}, 10 + n) == 204
            assert await patch({"p9": "x" * 4000}, 30) == 413
            # Replacing a value keeps the size: still accepted.
            assert await patch({"p8": "y" * 4000}, 31) == 204
    reported = emulator.application.device(device_id).twin.reported  # type: ignore[union-attr]
    assert "p9" not in reported and "comp" not in reported


async def test_desired_properties_over_the_twin_limits_are_413(tmp_path: Path) -> None:
    async with running(tmp_path) as (emulator, rest):
        await provision(emulator, "desired-big")
        path = "/api/devices/desired-big/properties"
        status, body = await rest.request("PATCH", path, {"big": "x" * 4100})
        assert status == 413 and body["error"]["code"] == "RequestEntityTooLarge", body
        for n in range(8):
            status, body = await rest.request("PATCH", path, {f"p{n}": "y" * 4000})
            assert status == 202, (n, body)
        status, body = await rest.request("PATCH", path, {"p8": "y" * 4000})
    assert status == 413 and "desired section" in body["error"]["message"]
    assert "p8" not in emulator.application.device("desired-big").twin.desired  # type: ignore[union-attr]


async def test_reported_patches_over_the_update_rate_are_429(tmp_path: Path) -> None:
    async with running(tmp_path, property_updates_per_second=2) as (emulator, _):
        device_id = "patchy"
        hub = await provision(emulator, device_id)
        async with hub_client(emulator, hub, device_id) as client:
            await client.subscribe("$iothub/twin/res/#", qos=0)
            statuses = []
            for rid in range(3):
                topic = f"$iothub/twin/PATCH/properties/reported/?$rid={rid}"
                await client.publish(topic, b'{"a": 1}', qos=0)
                statuses.append(parse_response(await next_message(client)).status)
    assert statuses == [204, 204, 429]


async def test_method_payload_over_128_kb_is_refused(tmp_path: Path) -> None:
    async with running(tmp_path) as (emulator, rest):
        await provision(emulator, "method-size")
        status, body = await rest.request(
            "POST", "/api/devices/method-size/commands/reboot", {"request": "x" * (128 * 1024)}
        )
    assert status == 413
    assert body["error"]["code"] == "RequestEntityTooLarge"


async def test_c2d_size_and_queue_depth(tmp_path: Path) -> None:
    async with running(tmp_path) as (emulator, rest):
        await provision(emulator, "c2d-limits")
        path = "/api/devices/c2d-limits/commands/reboot?queued=true"
        # A string request travels raw (IoT Central sends it unquoted): one byte over 64 KB.
        status, body = await rest.request("POST", path, {"request": "x" * (64 * 1024 + 1)})
        assert status == 413, body
        for n in range(50):
            status, body = await rest.request("POST", path, {"request": n})
            assert status == 202, (n, body)
        status, body = await rest.request("POST", path, {"request": 50})
    assert status == 403
    assert body["error"]["code"] == "DeviceMaximumQueueDepthExceeded"
    assert len(emulator.application.device("c2d-limits").c2d) == 50  # type: ignore[union-attr]


async def test_limits_off_for_benchmarks(tmp_path: Path) -> None:
    async with running(tmp_path, limits=False, dps_registrations_per_minute=1, hub_connects_per_second=1) as (
        emulator,
        _,
    ):
        hubs = [await provision(emulator, f"free-{n}") for n in range(3)]
        clients = []
        try:
            for n, hub in enumerate(hubs):
                client, code = await connect_raw(emulator, hub, f"free-{n}")
                clients.append(client)
                assert code == 0
            topic = "devices/free-0/messages/events/"
            for packet_id in range(1, 31):
                await clients[0].send(publish_packet(topic, b"{}", qos=1, packet_id=packet_id))
            for _ in range(30):
                await clients[0].expect(PUBACK)
        finally:
            for client in clients:
                await client.close()
    assert emulator.limits.refused == {}
