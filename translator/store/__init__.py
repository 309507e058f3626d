"""Persistence behind one small async interface; SQLite (`SqliteStore`) is the embedded default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from translator.store.base import (
    DeviceEntry,
    HubAssignment,
    OutboxFullError,
    OutboxMessage,
    PendingCommand,
    PskEntry,
    RegistrationRecord,
    Store,
    StoreError,
)

if TYPE_CHECKING:
    from translator.store.sqlite import SqliteStore

__all__ = [
    "DeviceEntry",
    "HubAssignment",
    "OutboxFullError",
    "OutboxMessage",
    "PendingCommand",
    "PskEntry",
    "RegistrationRecord",
    "SqliteStore",
    "Store",
    "StoreError",
]


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): the records and the interface are pure; only the SQLite store loads aiosqlite/asyncio.
    if name == "SqliteStore":
        from translator.store.sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
