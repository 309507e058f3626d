"""Ephemeral uplinks against the emulator over TLS: IoT Hub's HTTPS device API (the emulator's side and the
translator's client) and the short MQTT connection; no session stays open, failures back off and recover."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient, emulator_config
from tests.iotc.conftest import FAST_BACKOFF, dps_endpoint, hub_endpoint
from tests.iotc.emulated import MODEL, spec, telemetry_of
from translator.iotc.client.credentials import SymmetricKey, TlsContexts
from translator.iotc.client.ephemeral import EphemeralSession, EphemeralSettings, Transport
from translator.iotc.client.https_device import HttpsClients, HttpsLink
from translator.iotc.client.pool import SessionPool
from translator.iotc.client.session_types import SessionState
from translator.iotc.protocol.approval_wait import ApprovalPolicy
from translator.iotc.protocol.errors import (
    DeviceNotFoundError,
    HubError,
    HubThrottledError,
    HubUnauthorizedError,
)
from translator.iotc.protocol.sas import TokenPolicy

STEP = 20.0


def uplink(pool: SessionPool, emulator: Emulator, device_id: str, transport: Transport) -> EphemeralSession:
    settings = EphemeralSettings(
        transport=transport, https_port=emulator.https_port, linger=0.05, timeout=5.0, backoff=FAST_BACKOFF
    )
    device = spec(emulator, device_id)
    return pool.ephemeral_uplinks(settings).session(
        device_id, device.credential, pool.provisioner(device), MODEL
    )


@contextlib.asynccontextmanager
async def https_link(
    emulator: Emulator, pool: SessionPool, device_id: str, key: str | None = None
) -> AsyncIterator[HttpsLink]:
    assert emulator.tls is not None
    device = spec(emulator, device_id)
    assignment = await pool.provisioner(device)(False)
    clients = HttpsClients(TlsContexts(emulator.tls.ca_path), timeout=5.0)
    link = HttpsLink(
        assignment,
        SymmetricKey(key) if key is not None else device.credential,
        clients=clients,
        gateway_host="127.0.0.1",
        port=emulator.https_port,
        token_policy=TokenPolicy(),
    )
    try:
        yield link
    finally:
        await link.close()
        await clients.close()


@pytest.mark.parametrize("transport", ["https", "mqtt"])
async def test_ephemeral_telemetry_lands_and_no_session_stays(
    emulator: Emulator, rest: RestClient, pool: SessionPool, transport: Transport
) -> None:
    device_id = f"eph-{transport}"
    session = uplink(pool, emulator, device_id, transport)
    moment = datetime(2026, 12, 3, 9, 0, 0, 250000, tzinfo=UTC)
    try:
        async with asyncio.timeout(STEP):
            for value in (1, 2, 3):  # one batch: one link
                await session.send_telemetry(
                    json.dumps({"temperature": value}).encode(),
                    component="thermostat1",
                    creation_time=moment,
                    custom={"site": "north"},
                )
            events = await telemetry_of(rest, device_id, 3)
            assert [e["body"] for e in events] == [{"temperature": v} for v in (1, 2, 3)]
            event = events[0]
            assert event["component"] == "thermostat1"
            assert event["properties"] == {
                "iothub-creation-time-utc": "2026-12-03T09:00:00.250Z",
                "site": "north",
            }
            assert event["systemProperties"]["contentType"] == "application/json"
            assert event["systemProperties"]["contentEncoding"] == "utf-8"
            assert session.metrics.connects == 1
            while session.link_open:  # the link closes once the batch is out (linger), bounded above
                await asyncio.sleep(0.02)
            assert not emulator.hub.online(device_id)
            assert (await rest.get("/emulator/info"))["hubSessions"] == 0
            device = await rest.get(f"/api/devices/{device_id}")
            assert device["provisioned"] is True
    finally:
        await session.close()


async def test_https_api_refuses_a_wrong_key_and_an_unknown_device(
    emulator: Emulator, pool: SessionPool
) -> None:
    async with asyncio.timeout(STEP):
        async with https_link(emulator, pool, "eph-key", key="d3Jvbmcta2V5LXdyb25nLWtleQ==") as wrong:
            with pytest.raises(HubUnauthorizedError) as refused:
                await wrong.send(b'{"t": 1}')
            assert refused.value.reprovision  # the device may have moved: DPS again
        async with https_link(emulator, pool, "eph-gone") as link:
            await link.send(b'{"t": 1}')
            del emulator.application.devices["eph-gone"]  # deleted in IoT Central meanwhile
            with pytest.raises(DeviceNotFoundError):
                await link.send(b'{"t": 2}')


async def test_https_api_answers_429_over_the_device_rate(tmp_path: Path) -> None:
    config = emulator_config(tmp_path / "strict", device_messages_per_second=1.0, shaping_seconds=0.5)
    async with Emulator(config) as emulator:
        strict = SessionPool(dps=dps_endpoint(emulator), hub=hub_endpoint(emulator))
        try:
            async with asyncio.timeout(STEP):
                async with https_link(emulator, strict, "eph-fast") as link:
                    with pytest.raises(HubThrottledError) as throttled:
                        for _ in range(10):  # 1/s with 0.5 s of shaping: the fourth or so is refused
                            await link.send(b'{"t": 1}')
                    assert throttled.value.status == 429
                    assert throttled.value.retry_after == 1.0
        finally:
            await strict.close()


def up(session: EphemeralSession) -> bool:
    return session.is_connected


@contextlib.asynccontextmanager
async def watched(
    pool: SessionPool, emulator: Emulator, device_id: str, transport: Transport
) -> AsyncIterator[tuple[EphemeralSession, asyncio.Event]]:
    """An uplink and the event its `on_ready` sets (its backoff is over), closed at the end; bounded."""
    session = uplink(pool, emulator, device_id, transport)
    ready = asyncio.Event()
    session.on_ready = ready.set
    try:
        async with asyncio.timeout(STEP):
            yield session, ready
    finally:
        await session.close()


async def test_a_failed_send_backs_off_then_tells_the_owner_it_can_go_again(
    emulator: Emulator, rest: RestClient, pool: SessionPool
) -> None:
    async with watched(pool, emulator, "eph-outage", "https") as (session, ready):
        await session.send_telemetry(b'{"t": 1}')
        status, _ = await rest.request("POST", "/emulator/faults/throttle", {"seconds": 0.3, "scope": "hub"})
        assert status == 200
        with pytest.raises(HubThrottledError):
            await session.send_telemetry(b'{"t": 2}')
        assert not up(session)  # the delivery keeps what comes meanwhile in the outbox
        await ready.wait()
        assert up(session)
        while True:  # the throttle may outlast a short backoff draw: each failure draws again
            try:
                await session.send_telemetry(b'{"t": 2}')
                break
            except HubThrottledError:
                ready.clear()
                await ready.wait()
        events = await telemetry_of(rest, "eph-outage", 2)
        assert [e["body"] for e in events] == [{"t": 1}, {"t": 2}]


async def test_a_device_waiting_for_approval_waits_long_then_sends_once_approved(
    emulator: Emulator, rest: RestClient, pool: SessionPool
) -> None:
    status, _ = await rest.request("PUT", "/emulator/approval", {"autoApprove": False})
    assert status == 200
    settings = EphemeralSettings(
        https_port=emulator.https_port,
        linger=0.05,
        timeout=5.0,
        backoff=FAST_BACKOFF,
        approval=ApprovalPolicy(base=0.4, cap=0.8),
    )
    device = spec(emulator, "eph-approve")
    session = pool.ephemeral_uplinks(settings).session(
        "eph-approve", device.credential, pool.provisioner(device), MODEL
    )
    ready = asyncio.Event()
    session.on_ready = ready.set
    try:
        async with asyncio.timeout(STEP):
            with pytest.raises(HubError):
                await session.send_telemetry(b'{"t": 1}')
            assert session.status.state is SessionState.WAITING_APPROVAL
            refused = asyncio.get_running_loop().time()
            status, _ = await rest.request("PATCH", "/api/devices/eph-approve", {"enabled": True})
            assert status == 200
            await ready.wait()
            # Not the send backoff (FAST_BACKOFF: under 0.5 s from 0): a wait drawn from [0.2, 0.4).
            assert asyncio.get_running_loop().time() - refused >= 0.2 - 0.05
            await session.send_telemetry(b'{"t": 1}')
            [event] = await telemetry_of(rest, "eph-approve", 1)
            assert event["body"] == {"t": 1}
    finally:
        await session.close()


async def test_a_send_cut_by_its_timeout_backs_off_like_a_failed_one(
    emulator: Emulator, rest: RestClient, pool: SessionPool
) -> None:
    """The hub holds its PUBACK past the send's bound: the session backs off (down, so the delivery keeps
    what comes meanwhile in the outbox instead of waiting the whole bound for each message), then tells its
    owner it can go again, and the message sent again lands."""
    async with watched(pool, emulator, "eph-slow", "mqtt") as (session, ready):
        await session.send_telemetry(b'{"t": 1}')
        status, _ = await rest.request("POST", "/emulator/faults/delay-acks", {"seconds": 1.0})
        assert status == 200
        with pytest.raises(TimeoutError):
            await session.send_telemetry(b'{"t": 2}', timeout=0.3)
        assert not up(session)
        assert session.status.state is SessionState.BACKING_OFF
        await ready.wait()
        status, _ = await rest.request("POST", "/emulator/faults/clear", {})
        assert status == 200
        await session.send_telemetry(b'{"t": 3}')
        events = await telemetry_of(rest, "eph-slow", 3)
        assert {"t": 3} in [e["body"] for e in events]
