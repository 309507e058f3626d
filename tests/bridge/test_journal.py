"""The registration journal writes what the CoAP face holds now: coalesced, deletions for what is gone,
nothing lost when the store fails once or when the translator stops mid-write."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from translator.bridge.journal import RegistrationJournal
from translator.coap.snapshot import RegistrationSnapshot, from_document
from translator.store import RegistrationRecord, StoreError


def _snapshot(endpoint: str) -> RegistrationSnapshot:
    document = {
        "format": 2,
        "reg_id": f"r-{endpoint}",
        "peer": ["127.0.0.1", 40000],
        "lifetime": 300,
        "version": "1.1",
        "binding": "U",
        "queue_mode": False,
        "links": "</3303/0>",
        "expires": 1000.0,
        "observations": [],
    }
    return from_document(endpoint, endpoint, document, now=0.0, wall_now=900.0)


class FakeStore:
    def __init__(self) -> None:
        self.writes: list[tuple[list[str], list[str]]] = []
        self.fail = 0
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def write_registrations(self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise StoreError("disk full")
        self.writes.append(([r.endpoint for r in saves], list(deletes)))


def _journal(store: FakeStore, live: dict[str, RegistrationSnapshot]) -> RegistrationJournal:
    return RegistrationJournal(store, live.get)


async def test_changes_coalesce_and_gone_registrations_are_deleted() -> None:
    store, live = FakeStore(), {"a": _snapshot("a")}
    journal = _journal(store, live)
    for _ in range(5):
        journal.changed("a")
    journal.changed("b")  # not registered (any more): its row goes
    await journal.close()
    assert store.writes == [(["a"], ["b"])]
    journal.changed("a")  # after close: the shutdown ends every device, which is no de-registration
    await asyncio.sleep(0)
    assert journal.pending == 0 and len(store.writes) == 1


async def test_a_failed_write_stays_pending_and_is_written_later() -> None:
    store, live = FakeStore(), {"a": _snapshot("a")}
    store.fail = 1
    journal = _journal(store, live)
    journal.changed("a")
    await journal.flush()
    assert store.writes == [] and journal.pending == 1
    await journal.flush()
    assert store.writes == [(["a"], [])]


async def test_stopping_mid_write_finishes_that_write() -> None:
    store, live = FakeStore(), {"a": _snapshot("a")}
    store.gate = asyncio.Event()
    journal = _journal(store, live)
    journal.changed("a")
    await asyncio.wait_for(store.entered.wait(), 5)  # the writer took "a" and waits for the disk
    assert journal.pending == 0
    closing = asyncio.create_task(journal.close())
    await asyncio.sleep(0)  # close() runs up to its first wait
    store.gate.set()
    async with asyncio.timeout(5):
        await closing
    assert store.writes == [(["a"], [])]
