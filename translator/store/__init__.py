"""Persistence behind one small async interface; SQLite (`SqliteStore`) is the embedded default."""

from translator.store.base import (
    DeviceEntry,
    OutboxFullError,
    OutboxMessage,
    PendingCommand,
    PskEntry,
    RegistrationRecord,
    Store,
    StoreError,
)
from translator.store.sqlite import SqliteStore

__all__ = [
    "DeviceEntry",
    "OutboxFullError",
    "OutboxMessage",
    "PendingCommand",
    "PskEntry",
    "RegistrationRecord",
    "SqliteStore",
    "Store",
    "StoreError",
]
