"""The Redis store's connection (translator/store/redis_store.py has the key layout): a bounded blocking pool,
the durability check at open, key names under the prefix, and commands and Lua scripts (EVALSHA, loaded
again when the server lost them) whose Redis or socket errors become StoreErrors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from translator.store.base import StoreError
from translator.store.lifecycle import StoreLife

# The name it had before the store was split, so log filters that name it still see its warning.
log = logging.getLogger("translator.store.redis_store")

POOL_CONNECTIONS = 64  # commands in flight at once; more wait (Redis runs them one at a time anyway)

DEFAULT_PREFIX = "iotct:"


class RedisBase(StoreLife):
    """A Redis connection under the store's life cycle: keys under the prefix, commands and scripts whose
    failures are StoreErrors."""

    _open_errors = (RedisError, OSError, ValueError)

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        outbox_limit: int = 100_000,
        outbox_device_limit: int = 10_000,
        full_retry_after: float = 60.0,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(
            outbox_limit=outbox_limit,
            outbox_device_limit=outbox_device_limit,
            full_retry_after=full_retry_after,
        )
        self.url = url
        self.timeout = timeout
        self.prefix = prefix
        self._redis: aioredis.Redis | None = None
        # The outbox's (redis_outbox.py): appends waiting for the next pipeline, and its depth as last seen
        # (for metrics, without I/O), which opening reads.
        self._pending: list[tuple[str, bytes, asyncio.Future[int]]] = []
        self._size = 0
        self._loaded: dict[str, AsyncScript] = {}

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # -- life cycle -------------------------------------------------------------------------------

    async def _connect(self) -> int:
        # Bounded: a Redis that stops answering (a partition, a stalled fsync) fails a command with a
        # store error the device sees as 5.03, instead of holding a registration or an ack forever.
        # A blocking pool: a burst of commands beyond its connections waits (within the timeout) for one,
        # where redis-py's default pool refuses the 101st command ("Too many connections").
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=POOL_CONNECTIONS,
            timeout=self.timeout,
            decode_responses=False,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
        )
        self._redis = aioredis.Redis.from_pool(pool)
        await self._redis.ping()
        self._size = int(await self._redis.get(self.key("out", "n")) or 0)
        return self._size

    async def _opened(self) -> None:
        """Warn when Redis would lose acknowledged telemetry on a stop."""
        try:
            config = await self.redis.config_get("append*")
        except RedisError:  # managed services may refuse CONFIG: their durability is theirs to state
            return
        values = {str(k, "utf-8") if isinstance(k, bytes) else str(k): v for k, v in config.items()}
        appendonly = values.get("appendonly", b"")
        appendfsync = values.get("appendfsync", b"")
        if appendonly not in (b"yes", "yes") or appendfsync not in (b"always", "always"):
            log.warning(
                "Redis at %s runs appendonly=%s appendfsync=%s: acknowledged telemetry in the outbox may be"
                " lost if Redis stops; run it with appendonly yes, appendfsync always",
                self.describe(),
                appendonly,
                appendfsync,
            )

    def describe(self) -> str:
        # The URL may carry a password.
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"

    async def _disconnect(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
            self._redis = None
        self._loaded.clear()

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise StoreError("the store is not open")
        return self._redis

    async def _run(self, what: str, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except (RedisError, OSError) as error:
            raise StoreError(f"{what} failed: {error}") from error

    async def _script(self, what: str, source: str, keys: list[str], args: list[Any]) -> Any:
        # EVALSHA, loading the script again if the server lost it (a restart without it in its cache).
        return await self._run(what, self._scripts(source)(keys, args))

    def _scripts(self, source: str) -> AsyncScript:
        script = self._loaded.get(source)
        if script is None:
            script = self._loaded[source] = self.redis.register_script(source)
        return script
