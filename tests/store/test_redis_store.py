"""What only the Redis store does: a crash of Redis itself loses nothing acknowledged (AOF, fsync always),
and an unreachable Redis is a StoreError naming the server without its password."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.redis_server import RedisServer, needs_redis
from translator.store import RegistrationRecord, StoreError
from translator.store.factory import opened
from translator.store.redis_store import RedisStore

pytestmark = needs_redis


async def test_appends_acknowledged_before_redis_is_killed_are_there_after_its_restart(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis")
    await server.start()
    try:
        async with opened(RedisStore(server.url)) as store:
            sequences = await asyncio.gather(
                *(store.outbox_append(f"d{n % 3}", bytes([n])) for n in range(60))
            )
            await store.save_registration(RegistrationRecord("ep-1", "dev-1", {"lifetime": 60}, 1.0))
        await server.kill()  # SIGKILL: no shutdown save, only the AOF
        await server.start()
        async with opened(RedisStore(server.url)) as store:
            assert await store.outbox_depth() == 60
            kept = [m for d in ("d0", "d1", "d2") for m in await store.outbox_peek(d)]
            assert sorted(m.sequence for m in kept) == sorted(sequences)
            assert [r.endpoint for r in await store.registrations()] == ["ep-1"]
    finally:
        await server.stop()


async def test_two_stores_on_one_redis_share_the_outbox_bounds_and_order(tmp_path: Path) -> None:
    """Two translators on one Redis: one outbox, bounded as a whole, in one global order."""
    async with (
        RedisServer(tmp_path / "redis") as server,
        opened(RedisStore(server.url, outbox_limit=4)) as one,
        opened(RedisStore(server.url, outbox_limit=4)) as two,
    ):
        first = await one.outbox_append("dev", b"1")
        second = await two.outbox_append("dev", b"2")
        await one.outbox_append("other", b"3")
        await two.outbox_append("other", b"4")
        assert first < second
        with pytest.raises(StoreError):  # OutboxFullError: the bound counts both nodes' messages
            await one.outbox_append("dev", b"5")
        assert [m.payload for m in await two.outbox_peek("dev")] == [b"1", b"2"]
        await two.outbox_remove([first, second])
        assert await one.outbox_devices() == ["other"]


async def test_an_unreachable_redis_fails_at_open_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        await RedisStore("redis://user:s3cret@127.0.0.1:1/0").open()
    assert "127.0.0.1:1" in str(caught.value)
    assert "s3cret" not in str(caught.value)


async def test_a_redis_that_stops_answering_fails_the_command_within_the_timeout(tmp_path: Path) -> None:
    """A stalled Redis (SIGSTOP: connections stay open, nothing answers — as a partition or a stuck fsync
    looks) fails an append and a read with a StoreError after `store.redis_timeout`, so the device gets
    5.03 and nothing is acknowledged, instead of the exchange hanging; once Redis answers again, so does the
    store."""
    async with (
        RedisServer(tmp_path / "redis") as server,
        opened(RedisStore(server.url, timeout=0.5)) as store,
    ):
        await store.outbox_append("dev", b"before")
        server.pause()
        try:
            async with asyncio.timeout(10):  # the test's own bound: without the store's, this is what fails
                with pytest.raises(StoreError):
                    await store.outbox_append("dev", b"during")
                with pytest.raises(StoreError):
                    await store.registrations()
        finally:
            server.resume()
        async with asyncio.timeout(10):
            await store.outbox_append("dev", b"after")
            assert [m.payload for m in await store.outbox_peek("dev")] == [b"before", b"after"]


async def test_a_burst_of_commands_beyond_the_pool_waits_for_a_connection(tmp_path: Path) -> None:
    """A fleet registering at once reads the store from hundreds of tasks. redis-py 8's pool opens at most
    100 connections and refuses the 101st ("Too many connections"), which failed every registration past it
    (measured: 207 of 300 devices of a benchmark); the store's pool makes them wait for a connection
    instead, within the store's timeout."""
    async with RedisServer(tmp_path / "redis") as server, opened(RedisStore(server.url)) as store:
        async with asyncio.timeout(30):
            found = await asyncio.gather(*(store.device_for_endpoint(f"ep-{n}") for n in range(400)))
        assert found == [None] * 400
