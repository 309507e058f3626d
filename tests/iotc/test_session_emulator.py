"""Device sessions against the emulator over TLS: telemetry, twin, methods, C2D, and surviving faults."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from emulator.app import Emulator
from tests.conftest import RestClient, device_template, emulator_config
from tests.iotc.conftest import FAST_BACKOFF, dps_endpoint, hub_endpoint
from tests.iotc.emulated import MODEL, STEP, spec, telemetry_of
from tests.pki import make_ca, write_key
from translator.iotc.client.credentials import mint_device_certificate
from translator.iotc.client.pool import DeviceSpec, PoolSettings, SessionPool
from translator.iotc.client.session import DeviceSession, SessionCallbacks, SessionSettings, SessionState
from translator.iotc.protocol.methods import Invocation
from translator.iotc.protocol.property_bag import PropertyBag
from translator.iotc.protocol.sas import TokenPolicy
from translator.iotc.protocol.twin import DesiredProperty


async def test_telemetry_lands_with_component_timestamp_and_content_type(
    emulator: Emulator, rest: RestClient, pool: SessionPool
) -> None:
    emulator.publish_template(MODEL, device_template(MODEL))
    session = await pool.session(spec(emulator, "dev-t"))
    await session.wait_connected(STEP)
    moment = datetime(2026, 11, 26, 8, 30, 0, 123000, tzinfo=UTC)
    await session.send_telemetry(
        json.dumps({"temperature": 21.5}).encode(),
        component="thermostat1",
        creation_time=moment,
        custom={"k": "v"},
    )
    [event] = await telemetry_of(rest, "dev-t", 1)
    assert event["component"] == "thermostat1"
    assert event["body"] == {"temperature": 21.5}
    assert event["properties"]["iothub-creation-time-utc"] == "2026-11-26T08:30:00.123Z"
    assert event["properties"]["k"] == "v"
    assert event["systemProperties"]["contentType"] == "application/json"
    assert event["systemProperties"]["contentEncoding"] == "utf-8"
    device = await rest.get("/api/devices/dev-t")
    assert device["template"] == MODEL


async def test_reported_desired_and_acknowledgement(
    emulator: Emulator, rest: RestClient, pool: SessionPool
) -> None:
    desired: asyncio.Queue[list[DesiredProperty]] = asyncio.Queue()
    session = await pool.session(spec(emulator, "dev-w", SessionCallbacks(on_desired=desired.put_nowait)))
    await session.wait_connected(STEP)
    version = await session.patch_reported(
        {"manufacturer": "Contoso", "thermostat1": {"__t": "c", "max": 30}}
    )
    assert isinstance(version, int)
    properties = await rest.get("/api/devices/dev-w/properties")
    assert properties["manufacturer"] == "Contoso"

    status, _ = await rest.request(
        "PATCH", "/api/devices/dev-w/components/thermostat1/properties", {"target": 22}
    )
    assert status == 202
    async with asyncio.timeout(STEP):
        [prop] = await desired.get()
    assert (prop.name, prop.value, prop.component) == ("target", 22, "thermostat1")
    await session.patch_reported(prop.acknowledge())
    view = await rest.get("/api/devices/dev-w/components/thermostat1/properties")
    assert view["$metadata"]["target"]["ackCode"] == 200
    assert view["$metadata"]["target"]["ackVersion"] == prop.version

    twin = await session.get_twin()
    assert twin.desired["thermostat1"]["target"] == 22
    assert twin.reported["thermostat1"]["target"]["av"] == prop.version


async def test_method_round_trip_and_c2d(emulator: Emulator, rest: RestClient, pool: SessionPool) -> None:
    c2d: asyncio.Queue[tuple[PropertyBag, bytes]] = asyncio.Queue()

    async def on_method(invocation: Invocation) -> tuple[int, Any]:
        return 200, {"component": invocation.method.component, "got": invocation.payload}

    callbacks = SessionCallbacks(on_method=on_method, on_c2d=lambda bag, body: c2d.put_nowait((bag, body)))
    session = await pool.session(spec(emulator, "dev-m", callbacks))
    await session.wait_connected(STEP)
    status, result = await rest.request(
        "POST", "/api/devices/dev-m/components/thermostat1/commands/reboot", {"request": {"delay": 2}}
    )
    assert status == 201, result
    assert result["responseCode"] == 200
    assert result["response"] == {"component": "thermostat1", "got": {"delay": 2}}

    status, queued = await rest.request(
        "POST", "/api/devices/dev-m/commands/setMode?queued=true", {"request": "eco"}
    )
    assert status == 202
    async with asyncio.timeout(STEP):
        bag, body = await c2d.get()
    assert bag.message_id == queued["messageId"]
    assert bag.method_name == "setMode"
    assert body == b"eco"  # a string request goes raw, unquoted, as IoT Central sends it


async def test_method_without_handler_is_answered_404(
    emulator: Emulator, rest: RestClient, pool: SessionPool
) -> None:
    session = await pool.session(spec(emulator, "dev-n"))
    await session.wait_connected(STEP)
    status, result = await rest.request("POST", "/api/devices/dev-n/commands/unknown", {"request": None})
    assert status == 201
    assert result["responseCode"] == 404


async def publish_stream(
    session: DeviceSession, count: int, interval: float, under_way: asyncio.Event | None = None
) -> None:
    """`under_way` is set after a fifth of the messages were acknowledged: a fault injected then falls in
    the middle of the stream on a busy machine too."""
    for index in range(count):
        await session.send_telemetry(json.dumps({"n": index}).encode(), timeout=STEP)
        if under_way is not None and index + 1 == max(1, count // 5):
            under_way.set()
        await asyncio.sleep(interval)  # the stream's pace, not a synchronisation


def numbers(events: list[dict[str, Any]]) -> set[int]:
    return {event["body"]["n"] for event in events}


async def test_token_renewal_reconnects_without_losing_a_publish(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    pool = SessionPool(
        dps=dps_endpoint(emulator),
        hub=hub_endpoint(emulator),
        settings=PoolSettings(connect_rate=100, connect_burst=100),
        session_settings=SessionSettings(
            token_policy=TokenPolicy(ttl=3, renew_before=1), backoff=FAST_BACKOFF
        ),
    )
    try:
        session = await pool.session(spec(emulator, "dev-r"))
        await session.wait_connected(STEP)
        await publish_stream(session, 60, 0.05)
        events = await telemetry_of(rest, "dev-r", 60)
        assert numbers(events) == set(range(60))
        assert session.metrics.connects >= 2  # renewed at least once during the ~3 s stream
        assert session.metrics.failures == {}  # renewal is not a failure: the hub never cut us off
    finally:
        await pool.close()


async def test_dropped_connection_reconnects_and_nothing_is_lost(
    emulator: Emulator, rest: RestClient, pool: SessionPool
) -> None:
    session = await pool.session(spec(emulator, "dev-d"))
    await session.wait_connected(STEP)
    under_way = asyncio.Event()
    stream = asyncio.create_task(publish_stream(session, 40, 0.02, under_way))
    async with asyncio.timeout(STEP):
        await under_way.wait()
    status, dropped = await rest.request("POST", "/emulator/faults/disconnect/dev-d")
    assert status == 200 and dropped["dropped"] == 1
    await stream
    assert numbers(await telemetry_of(rest, "dev-d", 40)) == set(range(40))
    assert session.metrics.connects >= 2


async def test_throttled_hub_is_retried_with_backoff(
    emulator: Emulator, rest: RestClient, pool: SessionPool
) -> None:
    session = await pool.session(spec(emulator, "dev-q"))
    await session.wait_connected(STEP)
    await rest.request("POST", "/emulator/faults/throttle", {"seconds": 1.0, "scope": "hub"})
    started = time.monotonic()
    await rest.request("POST", "/emulator/faults/disconnect/dev-q")
    await session.send_telemetry(b'{"after": "throttle"}', timeout=STEP)
    # Refused (CONNACK 3) while throttled, then connected again once the hub accepted connections.
    assert time.monotonic() - started >= 0.9
    assert session.metrics.failures.get("refused", 0) >= 1
    assert session.metrics.connects == 2


async def test_a_puback_resets_the_reconnect_backoff(
    emulator: Emulator, rest: RestClient, pool: SessionPool
) -> None:
    """Issue 12 §5: refusals grow the backoff; the first PUBACK after the reconnect proves the connection
    good, so the next fault starts from the shortest delay again instead of the grown one."""
    session = await pool.session(spec(emulator, "dev-b"))
    await session.wait_connected(STEP)
    await rest.request("POST", "/emulator/faults/throttle", {"seconds": 1.0, "scope": "hub"})
    await rest.request("POST", "/emulator/faults/disconnect/dev-b")

    async def refused() -> None:
        while not session.metrics.failures.get("refused"):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(refused(), STEP)
    await session.send_telemetry(b'{"after": "throttle"}', timeout=STEP)
    assert session._backoff.attempt == 0


async def test_hub_move_reprovisions(emulator: Emulator, rest: RestClient, pool: SessionPool) -> None:
    session = await pool.session(spec(emulator, "dev-h"))
    await session.wait_connected(STEP)
    assert session.assignment is not None
    old_hub = session.assignment.assigned_hub
    status, moved = await rest.request("POST", "/emulator/faults/move/dev-h")
    assert status == 200
    assert moved["assignedHub"] != old_hub
    await session.send_telemetry(b'{"after": "move"}', timeout=STEP)
    assert session.assignment.assigned_hub == moved["assignedHub"]
    assert session.metrics.provisions == 1
    [event] = await telemetry_of(rest, "dev-h", 1)
    assert event["hub"] == moved["assignedHub"]


async def test_session_reports_honest_states(emulator: Emulator, rest: RestClient, pool: SessionPool) -> None:
    seen: list[SessionState] = []
    session = await pool.session(
        spec(emulator, "dev-s", SessionCallbacks(on_state=lambda _s, status: seen.append(status.state)))
    )
    await session.wait_connected(STEP)
    await rest.request("POST", "/emulator/faults/outage", {"seconds": 1})
    async with asyncio.timeout(STEP):
        while SessionState.BACKING_OFF not in seen:
            await asyncio.sleep(0.05)
    assert "retrying" in session.status.reason or session.status.state is not SessionState.CONNECTED
    await session.wait_connected(STEP)
    await pool.close_session("dev-s")
    assert session.status.state is SessionState.CLOSED
    assert seen[:3] == [SessionState.PROVISIONING, SessionState.CONNECTING, SessionState.CONNECTED]


async def test_idle_sessions_are_evicted_unless_pinned(emulator: Emulator) -> None:
    pool = SessionPool(
        dps=dps_endpoint(emulator),
        hub=hub_endpoint(emulator),
        settings=PoolSettings(idle_timeout=0.5),
        session_settings=SessionSettings(backoff=FAST_BACKOFF),
    )
    try:
        idle = await pool.session(spec(emulator, "dev-idle"))
        pinned = await pool.session(spec(emulator, "dev-pinned"))
        pool.pin("dev-pinned")
        await idle.wait_connected(STEP)
        await pinned.wait_connected(STEP)
        async with asyncio.timeout(STEP):
            while pool.get("dev-idle") is not None:
                await asyncio.sleep(0.1)
        assert pool.get("dev-pinned") is pinned
        assert pinned.is_connected
        assert pool.metrics()["evicted"] >= 1
        # Lazy connect: the next need opens a new session, reusing the cached assignment (no new DPS run).
        registrations = pool.metrics()["dps_registrations"]
        again = await pool.session(spec(emulator, "dev-idle"))
        await again.wait_connected(STEP)
        assert pool.metrics()["dps_registrations"] == registrations
    finally:
        await pool.close()


async def test_x509_device_provisions_and_connects(tmp_path: Path) -> None:
    (tmp_path / "enrollment").mkdir()
    issuer = make_ca(tmp_path / "enrollment", "Test Enrollment CA")
    ca_cert, ca_key = issuer.path, write_key(issuer, tmp_path / "enrollment" / "ca-key.pem")
    async with Emulator(emulator_config(tmp_path / "emulator", x509_enrollment_ca=ca_cert)) as emulator:
        identity = mint_device_certificate("dev-x509", ca_cert, ca_key, tmp_path / "devices")
        pool = SessionPool(
            dps=dps_endpoint(emulator),
            hub=hub_endpoint(emulator),
            session_settings=SessionSettings(backoff=FAST_BACKOFF),
        )
        try:
            session = await pool.session(DeviceSpec("dev-x509", identity, MODEL))
            await session.wait_connected(STEP)
            await session.send_telemetry(b'{"x": 1}')
            device = emulator.application.device("dev-x509")
            assert device is not None and device.attestation == "x509"
            assert emulator.hub.telemetry.since(0, "dev-x509")
        finally:
            await pool.close()


async def test_thousand_concurrent_sessions_connect_and_publish(tmp_path: Path) -> None:
    # About a thousand sessions at once, not about quotas: the emulator's limits are off here
    # (tests/emulator/test_limits.py holds them).
    config = emulator_config(tmp_path / "emulator", limits=False)
    async with Emulator(config) as emulator, aiohttp.ClientSession() as client:
        rest = RestClient(client, f"http://127.0.0.1:{emulator.http_port}")
        await _thousand_sessions(emulator, rest, 1000)


async def _thousand_sessions(emulator: Emulator, rest: RestClient, count: int) -> None:
    pool = SessionPool(
        dps=dps_endpoint(emulator),
        hub=hub_endpoint(emulator),
        settings=PoolSettings(
            connect_rate=5000, connect_burst=5000, dps_per_minute=0, telemetry_rate=0, device_telemetry_rate=0
        ),
        session_settings=SessionSettings(backoff=FAST_BACKOFF, connect_timeout=60),
    )
    try:
        sessions = [await pool.session(spec(emulator, f"fleet-{index:04d}")) for index in range(count)]
        async with asyncio.timeout(180):
            await asyncio.gather(*(s.send_telemetry(b'{"fleet": 1}', timeout=170) for s in sessions))
        assert pool.metrics()["sessions:connected"] == count
        assert len(emulator.hub.sessions) == count
        log = await rest.get("/emulator/telemetry")
        assert len({event["deviceId"] for event in log["value"]}) == count
    finally:
        await pool.close()
