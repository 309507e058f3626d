"""A failing assignment store never ends a device's session: against the emulator over TLS, with the real
SQLite store made to fail the way a full disk or a locked database does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.iotc.conftest import FAST_BACKOFF, dps_endpoint, hub_endpoint
from translator.bridge.assignments import StoreAssignments
from translator.iotc.client.credentials import SymmetricKey
from translator.iotc.client.pool import DeviceSpec, PoolSettings, SessionPool
from translator.iotc.client.session import SessionSettings
from translator.store import HubAssignment, SqliteStore, StoreError

MODEL = "dtmi:example:Thermostat;1"
STEP = 20.0


class FlakyStore(SqliteStore):
    """The real store, whose first `fail_gets` reads and first `fail_puts` writes of an assignment fail."""

    def __init__(self, path: Path, *, fail_gets: int = 0, fail_puts: int = 0) -> None:
        super().__init__(path)
        self.fail_gets, self.fail_puts = fail_gets, fail_puts

    async def get_assignment(self, device_id: str) -> HubAssignment | None:
        if self.fail_gets:
            self.fail_gets -= 1
            raise StoreError("database is locked")
        return await super().get_assignment(device_id)

    async def put_assignment(self, device_id: str, assignment: HubAssignment) -> None:
        if self.fail_puts:
            self.fail_puts -= 1
            raise StoreError("disk I/O error")
        await super().put_assignment(device_id, assignment)


def pool_over(emulator: Emulator, store: SqliteStore) -> SessionPool:
    return SessionPool(
        dps=dps_endpoint(emulator),
        hub=hub_endpoint(emulator),
        settings=PoolSettings(connect_rate=2000, connect_burst=2000),
        session_settings=SessionSettings(backoff=FAST_BACKOFF, connect_timeout=10),
        assignments=StoreAssignments(store),
    )


def spec(emulator: Emulator, device_id: str) -> DeviceSpec:
    return DeviceSpec(
        device_id, SymmetricKey.from_group(emulator.application.group_primary_key, device_id), MODEL
    )


async def delivered(rest: RestClient, device_id: str) -> list[object]:
    async with asyncio.timeout(STEP):
        while True:
            log = await rest.get(f"/emulator/telemetry?deviceId={device_id}&wait=1")
            if log["value"]:
                return list(log["value"])


async def test_a_store_that_fails_once_is_retried_with_backoff(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with FlakyStore(tmp_path / "translator.db", fail_gets=1) as store:
        pool = pool_over(emulator, store)
        try:
            session = await pool.session(spec(emulator, "dev-store"))
            await session.wait_connected(STEP)
            await session.send_telemetry(b'{"after": "store fault"}', timeout=STEP)
            assert await delivered(rest, "dev-store")
            assert session.metrics.failures == {"AssignmentUnavailableError": 1}
            assert (await store.get_assignment("dev-store")) is not None
        finally:
            await pool.close()


async def test_an_assignment_the_store_cannot_keep_is_still_used(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    async with FlakyStore(tmp_path / "translator.db", fail_puts=1) as store:
        pool = pool_over(emulator, store)
        try:
            session = await pool.session(spec(emulator, "dev-nocache"))
            await session.wait_connected(STEP)
            await session.send_telemetry(b'{"cached": false}', timeout=STEP)
            assert await delivered(rest, "dev-nocache")
            assert session.metrics.failures == {}
            assert pool.counters["dps_registrations"] == 1
            assert (await store.get_assignment("dev-nocache")) is None
        finally:
            await pool.close()
