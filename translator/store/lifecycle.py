"""The life cycle every store shares: open (a failure closes what was half opened and is a StoreError
naming the store), close after the outbox's group commit in flight, `async with`, and the outbox bounds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Self

from translator.store.base import StoreError

log = logging.getLogger("translator.store")


class StoreLife:
    # What a failed connection raises (anything else is a bug and propagates as itself).
    _open_errors: tuple[type[Exception], ...] = (Exception,)

    def __init__(self, *, outbox_limit: int, outbox_device_limit: int, full_retry_after: float) -> None:
        self._outbox_limit = outbox_limit
        self._outbox_device_limit = outbox_device_limit
        self._full_retry_after = full_retry_after
        self._flusher: asyncio.Task[None] | None = None

    def describe(self) -> str:
        """The store's name in messages (no password)."""
        raise NotImplementedError

    async def _connect(self) -> int:
        """Connect and prepare; the outbox's depth."""
        raise NotImplementedError

    async def _disconnect(self) -> None:
        """Release the connection, whatever state it is in."""
        raise NotImplementedError

    async def _opened(self) -> None:
        """After a successful connection (checks that warn but do not refuse)."""

    async def open(self) -> None:
        try:
            depth = await self._connect()
        except StoreError:
            await self._disconnect()
            raise
        except self._open_errors as error:
            await self._disconnect()
            raise StoreError(f"cannot open the store {self.describe()}: {error}") from error
        await self._opened()
        log.info("store %s opened (%d messages in the outbox)", self.describe(), depth)

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        await self._disconnect()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
