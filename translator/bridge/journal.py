"""Keeps the store's registrations in step with the CoAP face, so a restart takes every device back.

The CoAP face says *that* an endpoint changed (`changed`); the journal writes *what it is now*, read from
the face when the write happens: a burst of changes of one endpoint costs one row, a registration gone by
then is deleted, and writes of many endpoints share one transaction (one fsync).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from translator.coap.snapshot import RegistrationSnapshot, to_document
from translator.store import RegistrationRecord, StoreError

log = logging.getLogger(__name__)

RETRY_AFTER = 1.0  # seconds before a failed write is tried again (a full or read-only disk)


class RegistrationWriter(Protocol):
    """The store, or on a shared Redis the node's ownership, which writes only its own devices' records."""

    async def write_registrations(
        self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]
    ) -> Any: ...


class RegistrationJournal:
    def __init__(
        self, store: RegistrationWriter, snapshot: Callable[[str], RegistrationSnapshot | None]
    ) -> None:
        self._store = store
        self._snapshot = snapshot
        self._dirty: dict[str, None] = {}  # ordered set: endpoints whose row is behind
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    def changed(self, endpoint: str) -> None:
        if self._closed:
            return
        self._dirty[endpoint] = None
        self._wake.set()
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._run(), name="registration-journal")

    @property
    def pending(self) -> int:
        return len(self._dirty)

    async def _run(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if not await self._write_once() and not self._closed:
                await asyncio.sleep(RETRY_AFTER)
                self._wake.set()

    async def _write_once(self) -> bool:
        """Write every dirty endpoint's current state; False (and still dirty) when the store failed."""
        batch, self._dirty = self._dirty, {}
        if not batch:
            return True
        saves: list[RegistrationRecord] = []
        deletes: list[str] = []
        now = time.time()
        for endpoint in batch:
            snapshot = self._snapshot(endpoint)
            if snapshot is None:
                deletes.append(endpoint)
            else:
                saves.append(
                    RegistrationRecord(endpoint, snapshot.registration.device_id, to_document(snapshot), now)
                )
        try:
            await self._store.write_registrations(saves, deletes)
        except StoreError as error:
            log.warning("registrations not saved (%d), trying again: %s", len(batch), error)
            self._dirty = {**batch, **self._dirty}
            return False
        return True

    async def write_now(self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]) -> None:
        """Write through the journal's writer at once (on a shared Redis: fenced by ownership)."""
        await self._store.write_registrations(saves, deletes)

    async def flush(self) -> None:
        """Write what is pending now (graceful shutdown: a restart then loses nothing)."""
        while self._dirty:
            if not await self._write_once():
                return

    async def close(self) -> None:
        """Write what is pending, then ignore later changes: at shutdown the face tears every device down,
        and that must not reach the store as de-registrations. A write under way is finished, not
        cancelled (its rows are no longer in the dirty set)."""
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            self._wake.set()
            await asyncio.gather(writer, return_exceptions=True)
        await self.flush()
