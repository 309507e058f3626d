"""Fixtures for the IoT Central face's tests against the emulator over TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from emulator.app import Emulator
from translator.iotc.client.dps_client import DpsEndpoint
from translator.iotc.client.pool import PoolSettings, SessionPool
from translator.iotc.client.session import HubEndpoint, SessionSettings
from translator.iotc.protocol.backoff import BackoffPolicy

FAST_BACKOFF = BackoffPolicy(base=0.05, cap=0.5)


def dps_endpoint(emulator: Emulator) -> DpsEndpoint:
    assert emulator.tls is not None
    return DpsEndpoint(
        emulator.application.id_scope,
        host="127.0.0.1",
        port=emulator.mqtt_port,
        server_hostname="localhost",
        ca_file=emulator.tls.ca_path,
    )


def hub_endpoint(emulator: Emulator) -> HubEndpoint:
    assert emulator.tls is not None
    return HubEndpoint(gateway_host="127.0.0.1", port=emulator.mqtt_port, ca_file=emulator.tls.ca_path)


@pytest.fixture
async def pool(emulator: Emulator) -> AsyncIterator[SessionPool]:
    pool = SessionPool(
        dps=dps_endpoint(emulator),
        hub=hub_endpoint(emulator),
        settings=PoolSettings(connect_rate=2000, connect_burst=2000),
        session_settings=SessionSettings(backoff=FAST_BACKOFF, connect_timeout=10),
    )
    yield pool
    await pool.close()
