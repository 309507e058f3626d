"""The SQLite store: durable across reopen, ordered outbox with bounds, group commit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from translator.iotc.dps import Assigned
from translator.store import (
    DeviceEntry,
    OutboxFullError,
    PendingCommand,
    RegistrationRecord,
    SqliteStore,
    StoreError,
)


async def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "translator.db"
    async with SqliteStore(path) as store:
        await store.put_assignment("dev-1", Assigned("hub-a.azure-devices.net", "dev-1", "initialAssignment"))
        await store.save_registration(
            RegistrationRecord("ep-1", "dev-1", {"lifetime": 300, "objects": {"3": "1.1"}}, 1.0)
        )
        await store.outbox_append(
            "dev-1", b'{"t": 1}', component="c", creation_time=1700000000.5, properties={"k": "v"}
        )
        await store.add_command(
            PendingCommand("cmd-1", "dev-1", "reboot", {"delay": 1}, time.time() + 60, time.time())
        )
        await store.put_device(DeviceEntry("dev-1", "ep-1", codec="codecs/x.toml", symmetric_key="a2V5"))
    async with SqliteStore(path) as store:
        assert await store.get_assignment("dev-1") == Assigned(
            "hub-a.azure-devices.net", "dev-1", "initialAssignment"
        )
        [registration] = await store.registrations()
        assert registration.data == {"lifetime": 300, "objects": {"3": "1.1"}}
        [message] = await store.outbox_peek("dev-1")
        assert (message.payload, message.component, message.creation_time, message.properties) == (
            b'{"t": 1}',
            "c",
            1700000000.5,
            {"k": "v"},
        )
        assert await store.outbox_depth() == 1
        [command] = await store.commands("dev-1")
        assert command.payload == {"delay": 1}
        assert (await store.device_for_endpoint("ep-1")) == DeviceEntry(
            "dev-1", "ep-1", "codecs/x.toml", None, "a2V5"
        )
        await store.forget_assignment("dev-1")
        assert await store.get_assignment("dev-1") is None


async def test_outbox_keeps_order_per_device_and_removes(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        # Concurrent appends share commits but keep their order of arrival.
        sequences = await asyncio.gather(
            *(store.outbox_append(f"dev-{i % 2}", str(i).encode()) for i in range(200))
        )
        assert sequences == sorted(sequences)
        first = await store.outbox_peek("dev-0", limit=50)
        assert [m.payload for m in first] == [str(i).encode() for i in range(0, 100, 2)]
        await store.outbox_remove([m.sequence for m in first])
        assert await store.outbox_depth("dev-0") == 50
        assert await store.outbox_depth() == 150
        assert await store.outbox_devices() == ["dev-0", "dev-1"]


async def test_outbox_bounds_refuse_with_retry_after(tmp_path: Path) -> None:
    async with SqliteStore(
        tmp_path / "s.db", outbox_limit=5, outbox_device_limit=3, full_retry_after=30
    ) as store:
        for index in range(3):
            await store.outbox_append("a", bytes([index]))
        with pytest.raises(OutboxFullError) as caught:
            await store.outbox_append("a", b"x")
        assert caught.value.retry_after == 30
        await store.outbox_append("b", b"1")
        await store.outbox_append("b", b"2")
        with pytest.raises(OutboxFullError):
            await store.outbox_append("c", b"over the total bound")
        # Bounds are recounted from disk on reopen.
    async with SqliteStore(tmp_path / "s.db", outbox_limit=5, outbox_device_limit=3) as store:
        assert await store.outbox_depth() == 5
        with pytest.raises(OutboxFullError):
            await store.outbox_append("c", b"still full")


async def test_a_corrupt_file_fails_at_open_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"broken\.db"):
        await SqliteStore(path).open()
