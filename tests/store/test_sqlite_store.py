"""What only the SQLite store does: its file, disk full, read only (the contract: test_store_contract.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from translator.store import (
    DeviceEntry,
    HubAssignment,
    RegistrationRecord,
    SqliteStore,
    StoreError,
)
from translator.store.factory import opened


async def test_a_corrupt_file_fails_at_open_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"broken\.db"):
        await SqliteStore(path).open()


async def _rows(store: SqliteStore) -> list[tuple[str, bytes]]:
    async with store.db.execute("SELECT device_id, payload FROM outbox ORDER BY sequence") as rows:
        return [(str(device), bytes(payload)) async for device, payload in rows]


async def test_a_disk_full_episode_commits_no_refused_message_later(tmp_path: Path) -> None:
    """Issue 12 §5: after a disk-full episode devices got duplicates. One way: a group commit's INSERTs
    share the connection with other writes, and another write's commit (a registration saved meanwhile)
    committed rows of a batch that then failed — messages whose devices had been told 5.03, and which they
    sent again, were in the outbox after all. Each write is its own transaction now, and a failed one is
    rolled back: nothing refused is ever kept, and the outbox depth stays true."""
    async with SqliteStore(tmp_path / "translator.db") as store:
        await store.outbox_append("dev-0", b"before")
        async with store.db.execute("PRAGMA page_count") as rows:
            row = await rows.fetchone()
        assert row is not None
        await store.db.execute(f"PRAGMA max_page_count = {int(row[0]) + 2}")  # the disk is (nearly) full
        payload = b"x" * 1500
        outcomes = await asyncio.gather(
            *(store.outbox_append(f"dev-{n % 3}", payload + bytes([n])) for n in range(12)),
            store.save_registration(RegistrationRecord("ep-1", "dev-1", {}, 1.0)),
            return_exceptions=True,
        )
        kept = [payload + bytes([n]) for n, outcome in enumerate(outcomes[:12]) if isinstance(outcome, int)]
        refused = [outcome for outcome in outcomes[:12] if isinstance(outcome, BaseException)]
        assert refused and all(isinstance(error, StoreError) for error in refused), outcomes
        await store.db.execute("PRAGMA max_page_count = 1073741823")  # space again
        await store.outbox_append("dev-0", b"after")
        assert [payload for _, payload in await _rows(store)] == [b"before", *kept, b"after"]
        assert await store.outbox_depth() == 2 + len(kept)


async def test_a_read_only_store_refuses_a_removal_without_keeping_it_half_done(tmp_path: Path) -> None:
    """A removal that cannot be written raises StoreError, and leaves no open transaction behind for a
    later commit to finish: the rows are still there, and removed once the store can be written again."""
    async with SqliteStore(tmp_path / "translator.db") as store:
        sequences = [await store.outbox_append("dev-1", bytes([n])) for n in range(3)]
        await store.db.execute("PRAGMA query_only = ON")  # as a filesystem remounted read-only refuses
        with pytest.raises(StoreError):
            await store.outbox_remove(sequences[:2])
        await store.db.execute("PRAGMA query_only = OFF")
        assert len(await store.outbox_peek("dev-1")) == 3
        assert await store.outbox_depth("dev-1") == 3
        await store.outbox_remove(sequences[:2])
        assert [m.payload for m in await store.outbox_peek("dev-1")] == [bytes([2])]
        assert await store.outbox_depth("dev-1") == 1


async def test_a_store_made_before_device_attributes_and_connection_gets_the_columns(tmp_path: Path) -> None:
    """Devices imported before the CSV's extra columns (attributes) and `connection` were kept: their store
    opens, they read back with neither, and a new import stores both."""
    path = tmp_path / "translator.db"
    with contextlib.closing(sqlite3.connect(path)) as db:  # the devices table as it was created before
        db.execute(
            "CREATE TABLE devices (device_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL UNIQUE, codec TEXT, "
            "model_id TEXT, symmetric_key TEXT, certificate TEXT, private_key TEXT)"
        )
        db.execute("INSERT INTO devices VALUES ('old', 'ep-old', NULL, NULL, 'a2V5', NULL, NULL)")
        db.commit()
    async with opened(SqliteStore(path)) as store:
        assert await store.device_for_endpoint("ep-old") == DeviceEntry("old", "ep-old", symmetric_key="a2V5")
        new = DeviceEntry("new", "ep-new", attributes=(("site", "Lyon"),), connection="ephemeral")
        await store.put_device(new)
        assert await store.devices() == [new, DeviceEntry("old", "ep-old", symmetric_key="a2V5")]


async def test_a_store_made_before_assignments_kept_their_gateway_gets_the_column(tmp_path: Path) -> None:
    """An assignment cached before the gateway relation was kept reads back with no gateway (so a translator
    that is a gateway now registers the device again); a new one keeps its gateway."""
    path = tmp_path / "translator.db"
    with contextlib.closing(sqlite3.connect(path)) as db:  # the assignments table as it was created before
        db.execute(
            "CREATE TABLE assignments (device_id TEXT PRIMARY KEY, hub TEXT NOT NULL, "
            "assigned_id TEXT NOT NULL, substatus TEXT, updated REAL NOT NULL)"
        )
        db.execute("INSERT INTO assignments VALUES ('old', 'hub.example', 'old', 'initialAssignment', 1.0)")
        db.commit()
    async with opened(SqliteStore(path)) as store:
        assert await store.get_assignment("old") == HubAssignment("hub.example", "old", "initialAssignment")
        await store.put_assignment("new", HubAssignment("hub.example", "new", None, "gw-1"))
        assert await store.get_assignment("new") == HubAssignment("hub.example", "new", None, "gw-1")
