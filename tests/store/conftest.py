"""The store contract runs on both backends: the embedded SQLite file and a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import REDIS_SERVER, RedisServer
from translator.store import SqliteStore, Store
from translator.store.redis_store import RedisStore

StoreFactory = Callable[..., Store]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "redis",
            marks=pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
        ),
    ]
)
async def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """A factory of store instances on one backing (call it again for a "reopen" on the same data);
    keyword arguments are the outbox bounds."""
    if request.param == "sqlite":
        yield lambda **bounds: SqliteStore(tmp_path / "state" / "translator.db", **bounds)
        return
    async with RedisServer(tmp_path / "redis") as server:

        def make(**bounds: Any) -> Store:
            return RedisStore(server.url, **bounds)

        yield make
