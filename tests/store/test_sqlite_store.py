"""The SQLite store: durable across reopen, ordered outbox with bounds, group commit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from translator.store import (
    DeviceEntry,
    HubAssignment,
    OutboxFullError,
    PendingCommand,
    PskEntry,
    RegistrationRecord,
    SqliteStore,
    StoreError,
)


async def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "translator.db"
    async with SqliteStore(path) as store:
        await store.put_assignment(
            "dev-1", HubAssignment("hub-a.azure-devices.net", "dev-1", "initialAssignment")
        )
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
        assert await store.get_assignment("dev-1") == HubAssignment(
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


async def test_psk_per_endpoint_replaced_and_removed(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        await store.put_psk(PskEntry("id-1", "dev1", b"k" * 16))
        assert await store.psk_for_identity("id-1") == PskEntry("id-1", "dev1", b"k" * 16)
        await store.put_psk(PskEntry("id-1b", "dev1", b"j" * 16))  # a new identity for the endpoint
        assert await store.psk_for_identity("id-1") is None
        entry = await store.psk_for_endpoint("dev1")
        assert entry is not None and entry.identity == "id-1b" and "j" not in repr(entry)
        await store.remove_psk("dev1")
        assert await store.psk_for_endpoint("dev1") is None
