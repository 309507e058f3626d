"""The store `serve` and the CLI use: Redis when `store.redis_url` is set (a cluster), else SQLite."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from translator.store.base import Store

if TYPE_CHECKING:
    from translator.settings import Settings


class _Opened(AbstractAsyncContextManager[Store]):
    def __init__(self, store: Store) -> None:
        self.store = store

    async def __aenter__(self) -> Store:
        await self.store.open()
        return self.store

    async def __aexit__(self, *exc_info: object) -> None:
        await self.store.close()


def store_from_settings(settings: Settings) -> Store:
    chosen = settings.store
    if chosen.redis_url:
        from translator.store.redis_store import RedisStore  # redis-py only when a cluster asks for it

        return RedisStore(
            chosen.redis_url,
            prefix=chosen.redis_prefix,
            outbox_limit=chosen.outbox_limit,
            outbox_device_limit=chosen.outbox_device_limit,
            timeout=chosen.redis_timeout,
        )
    from translator.store.sqlite import SqliteStore

    return SqliteStore(
        settings.store_path,
        outbox_limit=chosen.outbox_limit,
        outbox_device_limit=chosen.outbox_device_limit,
    )


def opened(store: Store) -> AbstractAsyncContextManager[Store]:
    """`async with opened(store_from_settings(settings)) as store:` — open, then close however it ends."""
    return _Opened(store)


def describe(settings: Settings) -> str:
    """Where the store is, for messages (without a Redis password)."""
    url = settings.store.redis_url
    if url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"
    return str(settings.store_path)
