"""The embedded store: one SQLite file in the state directory, in WAL mode.

Outbox appends are group-committed: appends arriving while a commit is under way share the next transaction,
so each message is on disk (synchronous=FULL) before its caller returns, at a fraction of an fsync each.

Every write is one transaction of its own, under one lock: on one connection, another write's commit would
otherwise commit rows of a group commit still under way, and if that group then failed (disk full), its
callers were told "not kept" about rows that were — their devices sent them again, and they were delivered
twice. A write that fails is rolled back, so nothing it did reaches a later commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from translator.private_files import create_private, private_dir
from translator.store.base import (
    DeviceEntry,
    HubAssignment,
    OutboxFullError,
    OutboxMessage,
    PendingCommand,
    PskEntry,
    RegistrationRecord,
    StoreError,
)
from translator.store.lifecycle import StoreLife

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
    device_id TEXT PRIMARY KEY, hub TEXT NOT NULL, assigned_id TEXT NOT NULL, substatus TEXT,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS registrations (
    endpoint TEXT PRIMARY KEY, device_id TEXT NOT NULL, data TEXT NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, payload BLOB NOT NULL,
    component TEXT, creation_time REAL, properties TEXT NOT NULL, enqueued REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_device ON outbox (device_id, sequence);
CREATE TABLE IF NOT EXISTS commands (
    command_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, name TEXT NOT NULL, payload TEXT NOT NULL,
    deadline REAL NOT NULL, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_device ON commands (device_id, created);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL UNIQUE, codec TEXT, model_id TEXT,
    symmetric_key TEXT, certificate TEXT, private_key TEXT, attributes TEXT, connection TEXT
);
CREATE TABLE IF NOT EXISTS dtls_psk (
    identity TEXT PRIMARY KEY, endpoint TEXT NOT NULL UNIQUE, key BLOB NOT NULL
);
"""
_ADDED_DEVICE_COLUMNS = ("attributes", "connection")  # in the order stores gained them
_ADDED_COLUMNS = {"devices": _ADDED_DEVICE_COLUMNS, "assignments": ("gateway_id",)}
_DEVICE_COLUMNS = (
    "device_id, endpoint, codec, model_id, symmetric_key, certificate, private_key, "
    + ", ".join(_ADDED_DEVICE_COLUMNS)
)


def _device_entry(row: Any) -> DeviceEntry:
    device_id, endpoint, codec, model_id, key, certificate, private_key, attributes, connection = row
    pairs = tuple(json.loads(attributes).items()) if attributes else ()
    return DeviceEntry(device_id, endpoint, codec, model_id, key, certificate, private_key, pairs, connection)


_INSERT_OUTBOX = (
    "INSERT INTO outbox (device_id, payload, component, creation_time, properties, enqueued)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


class SqliteStore(StoreLife):
    def __init__(
        self,
        path: Path,
        *,
        outbox_limit: int = 100_000,
        outbox_device_limit: int = 10_000,
        full_retry_after: float = 60.0,
    ) -> None:
        super().__init__(
            outbox_limit=outbox_limit,
            outbox_device_limit=outbox_device_limit,
            full_retry_after=full_retry_after,
        )
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[int]]] = []
        self._transaction = asyncio.Lock()  # one write transaction at a time on the connection
        self._depth = 0
        self._device_depth: dict[str, int] = {}

    # -- life cycle -------------------------------------------------------------------------------

    def describe(self) -> str:
        return str(self.path)

    async def _connect(self) -> int:
        try:
            # Imported device keys are stored in clear: the file (and SQLite's -wal/-shm, which copy its
            # mode) is 0600 from creation, in a 0700 directory.
            create_private(private_dir(self.path.parent) / self.path.name)
        except OSError as error:
            raise StoreError(f"cannot create the store {self.path}: {error}") from error
        # sqlite3 raises several unrelated types for a bad file: any failure here is "cannot open".
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.executescript(_SCHEMA)
        await self._add_columns(self._db)
        await self._db.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )
        await self._db.commit()
        async with self._db.execute("SELECT device_id, COUNT(*) FROM outbox GROUP BY device_id") as rows:
            self._device_depth = {str(device_id): int(count) async for device_id, count in rows}
        self._depth = sum(self._device_depth.values())
        return self._depth

    async def _disconnect(self) -> None:
        if self._db is not None:  # its worker thread would keep the process alive at exit
            with contextlib.suppress(Exception):
                await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    async def _write(self, sql: str, parameters: tuple[Any, ...] = ()) -> None:
        async with self._transaction:
            try:
                await self.db.execute(sql, parameters)
                await self.db.commit()
            except Exception as error:
                await self._roll_back()
                raise StoreError(f"store write failed: {error}") from error

    async def _roll_back(self) -> None:
        # SQLite may have rolled back already (SQLITE_FULL, IOERR): then this fails, harmlessly.
        with contextlib.suppress(Exception):
            await self.db.rollback()

    # -- assignments ------------------------------------------------------------------------------

    async def get_assignment(self, device_id: str) -> HubAssignment | None:
        async with self.db.execute(
            "SELECT hub, assigned_id, substatus, gateway_id FROM assignments WHERE device_id = ?",
            (device_id,),
        ) as rows:
            row = await rows.fetchone()
        return None if row is None else HubAssignment(row[0], row[1], row[2], row[3])

    async def put_assignment(self, device_id: str, assignment: HubAssignment) -> None:
        await self._write(
            "INSERT OR REPLACE INTO assignments (device_id, hub, assigned_id, substatus, updated, gateway_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                device_id,
                assignment.hub,
                assignment.device_id,
                assignment.substatus,
                time.time(),
                assignment.gateway_id,
            ),
        )

    async def forget_assignment(self, device_id: str) -> None:
        await self._write("DELETE FROM assignments WHERE device_id = ?", (device_id,))

    # -- registrations ----------------------------------------------------------------------------

    async def save_registration(self, record: RegistrationRecord) -> None:
        await self._write(
            "INSERT OR REPLACE INTO registrations VALUES (?, ?, ?, ?)",
            (record.endpoint, record.device_id, json.dumps(record.data), record.updated),
        )

    async def delete_registration(self, endpoint: str) -> None:
        await self._write("DELETE FROM registrations WHERE endpoint = ?", (endpoint,))

    async def write_registrations(self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]) -> None:
        try:
            if saves:
                await self.db.executemany(
                    "INSERT OR REPLACE INTO registrations VALUES (?, ?, ?, ?)",
                    [(r.endpoint, r.device_id, json.dumps(r.data), r.updated) for r in saves],
                )
            if deletes:
                await self.db.executemany(
                    "DELETE FROM registrations WHERE endpoint = ?", [(e,) for e in deletes]
                )
            await self.db.commit()
        except StoreError:
            raise
        except Exception as error:  # sqlite3 raises several unrelated types for a bad disk
            # No rollback: the connection's transaction is shared with the outbox's group commit.
            raise StoreError(f"registrations not written: {error}") from error

    async def registrations(self) -> list[RegistrationRecord]:
        async with self.db.execute("SELECT endpoint, device_id, data, updated FROM registrations") as rows:
            return [RegistrationRecord(row[0], row[1], json.loads(row[2]), row[3]) async for row in rows]

    # -- outbox -----------------------------------------------------------------------------------

    async def outbox_append(
        self,
        device_id: str,
        payload: bytes,
        *,
        component: str | None = None,
        creation_time: float | None = None,
        properties: dict[str, str] | None = None,
    ) -> int:
        """Keep a message durably; return its sequence number once it is on disk, or raise OutboxFullError."""
        device_depth = self._device_depth.get(device_id, 0)
        if self._depth >= self._outbox_limit or device_depth >= self._outbox_device_limit:
            raise OutboxFullError(
                f"outbox full ({self._depth} messages, {device_depth} for {device_id})",
                retry_after=self._full_retry_after,
            )
        # Counted now, so concurrent appends cannot overshoot the bound while they wait for the commit.
        self._depth += 1
        self._device_depth[device_id] = device_depth + 1
        row = (device_id, payload, component, creation_time, json.dumps(properties or {}), time.time())
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((row, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="store-outbox-commit")
        try:
            return await done
        except BaseException:
            self._uncount(device_id, 1)
            raise

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._transaction:
                    try:
                        sequences = []
                        for row, _ in batch:
                            cursor = await self.db.execute(_INSERT_OUTBOX, row)
                            sequences.append(cursor.lastrowid)
                        await self.db.commit()
                    except Exception:
                        await self._roll_back()
                        raise
            except Exception as error:
                failure = StoreError(f"outbox write failed: {error}")
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failure)
                continue
            for (_, done), sequence in zip(batch, sequences, strict=True):
                if not done.done():
                    done.set_result(int(sequence or 0))

    def _uncount(self, device_id: str, count: int) -> None:
        self._depth = max(0, self._depth - count)
        remaining = self._device_depth.get(device_id, 0) - count
        if remaining > 0:
            self._device_depth[device_id] = remaining
        else:
            self._device_depth.pop(device_id, None)

    async def outbox_peek(self, device_id: str, limit: int = 100) -> list[OutboxMessage]:
        # Under the lock: the connection sees its own uncommitted rows, and a group commit under way may
        # still fail; only committed messages may be replayed.
        async with (
            self._transaction,
            self.db.execute(
                "SELECT sequence, device_id, payload, component, creation_time, properties, enqueued"
                " FROM outbox WHERE device_id = ? ORDER BY sequence LIMIT ?",
                (device_id, limit),
            ) as rows,
        ):
            return [
                OutboxMessage(row[0], row[1], bytes(row[2]), row[3], row[4], json.loads(row[5]), row[6])
                async for row in rows
            ]

    async def outbox_remove(self, sequences: list[int]) -> None:
        if not sequences:
            return
        marks = ",".join("?" * len(sequences))
        async with self._transaction:
            try:
                async with self.db.execute(
                    f"SELECT device_id, COUNT(*) FROM outbox WHERE sequence IN ({marks}) GROUP BY device_id",
                    sequences,
                ) as rows:
                    counts = [(str(device_id), int(count)) async for device_id, count in rows]
                await self.db.execute(f"DELETE FROM outbox WHERE sequence IN ({marks})", tuple(sequences))
                await self.db.commit()
            except Exception as error:
                await self._roll_back()
                raise StoreError(f"outbox removal failed: {error}") from error
        for device_id, count in counts:
            self._uncount(device_id, count)

    async def outbox_depth(self, device_id: str | None = None) -> int:
        return self._depth if device_id is None else self._device_depth.get(device_id, 0)

    def outbox_size(self) -> int:
        return self._depth

    async def outbox_devices(self) -> list[str]:
        return sorted(self._device_depth)

    # -- commands ---------------------------------------------------------------------------------

    async def add_command(self, command: PendingCommand) -> None:
        await self._write(
            "INSERT OR REPLACE INTO commands VALUES (?, ?, ?, ?, ?, ?)",
            (
                command.command_id,
                command.device_id,
                command.name,
                json.dumps(command.payload),
                command.deadline,
                command.created,
            ),
        )

    async def commands(self, device_id: str) -> list[PendingCommand]:
        async with self.db.execute(
            "SELECT command_id, device_id, name, payload, deadline, created FROM commands"
            " WHERE device_id = ? ORDER BY created",
            (device_id,),
        ) as rows:
            return [PendingCommand(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) async for r in rows]

    async def remove_command(self, command_id: str) -> None:
        await self._write("DELETE FROM commands WHERE command_id = ?", (command_id,))

    # -- devices ----------------------------------------------------------------------------------

    async def put_device(self, entry: DeviceEntry) -> None:
        await self._write(
            f"INSERT OR REPLACE INTO devices ({_DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.device_id,
                entry.endpoint,
                entry.codec,
                entry.model_id,
                entry.symmetric_key,
                entry.certificate,
                entry.private_key,
                json.dumps(dict(entry.attributes)) if entry.attributes else None,
                entry.connection,
            ),
        )

    @staticmethod
    async def _add_columns(db: aiosqlite.Connection) -> None:
        """Columns added since a store file was created (CREATE TABLE IF NOT EXISTS leaves an old table be):
        the devices CSV's extra columns (attributes) and a device's connection; an assignment's gateway."""
        for table, added in _ADDED_COLUMNS.items():
            async with db.execute(f"PRAGMA table_info({table})") as rows:
                columns = {str(row[1]) async for row in rows}
            for column in added:
                if column not in columns:
                    await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")

    async def device_for_endpoint(self, endpoint: str) -> DeviceEntry | None:
        async with self.db.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE endpoint = ?", (endpoint,)
        ) as rows:
            row = await rows.fetchone()
        return None if row is None else _device_entry(row)

    # -- DTLS pre-shared keys (one identity per endpoint; read at every handshake: edits apply at once) ------

    async def put_psk(self, entry: PskEntry) -> None:
        await self._write(
            "INSERT OR REPLACE INTO dtls_psk VALUES (?, ?, ?)", (entry.identity, entry.endpoint, entry.key)
        )

    async def remove_psk(self, endpoint: str) -> None:
        await self._write("DELETE FROM dtls_psk WHERE endpoint = ?", (endpoint,))

    async def psk_for_identity(self, identity: str) -> PskEntry | None:
        async with self.db.execute(
            "SELECT identity, endpoint, key FROM dtls_psk WHERE identity = ?", (identity,)
        ) as rows:
            row = await rows.fetchone()
        return None if row is None else PskEntry(str(row[0]), str(row[1]), bytes(row[2]))

    async def psk_for_endpoint(self, endpoint: str) -> PskEntry | None:
        async with self.db.execute(
            "SELECT identity, endpoint, key FROM dtls_psk WHERE endpoint = ?", (endpoint,)
        ) as rows:
            row = await rows.fetchone()
        return None if row is None else PskEntry(str(row[0]), str(row[1]), bytes(row[2]))

    async def devices(self) -> list[DeviceEntry]:
        async with self.db.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY device_id") as rows:
            return [_device_entry(row) async for row in rows]
