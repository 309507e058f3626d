"""The relay on Redis: one stream per node (`relay:<node>`), the seen-at index, and the loops that carry them.

    relay:<node>     stream: datagrams for this node to handle (from a device whose owner it is) or to send
                     (to a device whose datagrams reach it); XADD with an approximate MAXLEN, read with
                     XREAD BLOCK in bounded blocks; expires when nobody wrote to it for a while (a dead
                     node's)
    seen:<address>   the device whose Register/Update last came from this address (written then only, never
                     per datagram): how a node that reads a Send from an address it has no registration for
                     finds the device, and through `own:<device>` its owner

Writes go through a bounded queue drained by one task in pipelines (a datagram is not a promise: when the
queue is full or Redis is away it is dropped, and CoAP retransmits). Both loops outlive a Redis restart:
each failure waits a backoff (relay_policy.RelayPolicy) and tries again; `stop()` cancels them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from translator.cluster.relay_policy import (
    Foreign,
    Peer,
    Relayed,
    RelayPolicy,
    decode_entry,
    encode_entry,
    peer_text,
    seen_ttl,
)
from translator.store.base import StoreError

log = logging.getLogger(__name__)

# KEYS: seen:<address>; ARGV: the key prefix → {} (nobody), {device} (no owner), {device, owner, alive 1/0}.
_LOOKUP = """
local device = redis.call('GET', KEYS[1])
if not device then return {} end
local node = redis.call('HGET', ARGV[1] .. 'own:' .. device, 'node')
if not node then return {device} end
return {device, node, redis.call('EXISTS', ARGV[1] .. 'node:' .. node)}
"""


class RedisRelay:
    """One node's end of the relay: `post` writes an entry to another node's stream, entries for this node
    go to `on_entry` as they arrive."""

    def __init__(
        self,
        redis: aioredis.Redis,
        node: str,
        *,
        prefix: str = "iotct:",
        policy: RelayPolicy | None = None,
        on_entry: Callable[[Relayed], None] | None = None,
    ) -> None:
        self.redis = redis
        self.node = node
        self.prefix = prefix
        self.policy = policy or RelayPolicy()
        self.on_entry: Callable[[Relayed], None] = on_entry or (lambda _entry: None)
        self._outgoing: asyncio.Queue[tuple[str, Relayed]] = asyncio.Queue(self.policy.queue)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._lookup: AsyncScript = redis.register_script(_LOOKUP)
        self.counters = {"posted": 0, "dropped": 0, "received": 0, "read_failures": 0, "write_failures": 0}

    def stream(self, node: str) -> str:
        return f"{self.prefix}relay:{node}"

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        # The reader starts at the stream's end as it is when start() returns (not when its first XREAD
        # runs: an entry posted in between would be missed); nothing before is for this node's process.
        start: bytes | str = "$"
        try:
            newest: Any = await self.redis.xrevrange(self.stream(self.node), count=1)
        except (RedisError, OSError) as error:
            log.warning("node %s: relay stream not read at start: %s", self.node, error)
        else:
            start = bytes(newest[0][0]) if newest else b"0-0"
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._read_forever(start), name=f"relay-read-{self.node}"),
            asyncio.create_task(self._write_forever(), name=f"relay-write-{self.node}"),
        ]

    async def stop(self) -> None:
        # The reader is told to stop and ends when its XREAD returns (within one block): cancelling redis-py
        # in the middle of a blocking read was seen to hang the cancelling task. Cancelled if it does not.
        self._stopping = True
        for task in self._tasks[1:]:
            task.cancel()
        if self._tasks:
            reader = self._tasks[0]
            try:
                async with asyncio.timeout(self.policy.block + 1.0):
                    await asyncio.shield(reader)
            except TimeoutError:
                reader.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- writing ---------------------------------------------------------------------------------

    def post(self, node: str, entry: Relayed) -> bool:
        """Queue `entry` for `node`'s stream; False (dropped) when the queue is full."""
        try:
            self._outgoing.put_nowait((node, entry))
        except asyncio.QueueFull:
            self.counters["dropped"] += 1
            return False
        return True

    async def _write_forever(self) -> None:
        failures = 0
        queue = self._outgoing
        while True:
            batch = [await queue.get()]
            while len(batch) < self.policy.batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._write(batch)
            except (RedisError, OSError) as error:
                failures += 1
                self.counters["write_failures"] += 1
                self.counters["dropped"] += len(batch)
                log.warning("node %s: %d relayed datagrams dropped: %s", self.node, len(batch), error)
                await asyncio.sleep(self.policy.reconnect_delay(failures))
            else:
                failures = 0
                self.counters["posted"] += len(batch)

    async def _write(self, batch: list[tuple[str, Relayed]]) -> None:
        policy = self.policy
        streams: set[str] = set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for node, entry in batch:
                stream = self.stream(node)
                streams.add(stream)
                pipe.xadd(stream, encode_entry(entry), maxlen=policy.stream_length, approximate=True)  # type: ignore[arg-type]
            for stream in streams:
                pipe.pexpire(stream, policy.stream_idle_ms)
            await pipe.execute()

    # -- reading ---------------------------------------------------------------------------------

    def _stopped(self) -> bool:
        return self._stopping

    async def _read_forever(self, last: bytes | str) -> None:
        stream = self.stream(self.node)
        failures = 0
        while not self._stopped():
            try:
                answer: Any = await self.redis.xread(
                    {stream: last}, count=self.policy.batch, block=self.policy.block_ms
                )
            except (RedisError, OSError) as error:
                failures += 1
                self.counters["read_failures"] += 1
                if failures == 1:
                    log.warning("node %s: relay stream not read (%s); retrying", self.node, error)
                await asyncio.sleep(self.policy.reconnect_delay(failures))
                continue
            if failures:
                log.info("node %s: relay stream read again after %d failures", self.node, failures)
                failures = 0
            if self._stopped():  # a stop came while the read blocked
                return
            for _name, entries in answer or ():
                for entry_id, fields in entries:
                    last = entry_id
                    entry = decode_entry(fields)
                    if entry is None:
                        continue
                    self.counters["received"] += 1
                    try:
                        self.on_entry(entry)
                    except Exception:  # one bad datagram must not stop the node's relay
                        log.exception("node %s: relayed datagram from %s failed", self.node, entry.sender)

    # -- the seen-at index -----------------------------------------------------------------------

    async def seen(self, device: str, peer: Peer, lifetime: int) -> None:
        """A Register/Update of `device` came from `peer` (to this node)."""
        key = f"{self.prefix}seen:{peer_text(peer)}"
        try:
            await self.redis.set(key, device.encode(), ex=seen_ttl(lifetime))
        except (RedisError, OSError) as error:
            raise StoreError(f"seen-at write failed: {error}") from error

    async def lookup(self, peer: Peer) -> Foreign:
        """The device whose registration came from `peer` last, and its owner when that is another live
        node (else `owner` is None: the datagram is this node's business)."""
        try:
            found = await self._lookup([f"{self.prefix}seen:{peer_text(peer)}"], [self.prefix])
        except (RedisError, OSError) as error:
            raise StoreError(f"seen-at read failed: {error}") from error
        if not found:
            return Foreign(None, None)
        device = found[0].decode()
        if len(found) < 3:
            return Foreign(device, None)
        owner = found[1].decode()
        alive = int(found[2]) == 1
        return Foreign(device, owner if alive and owner != self.node else None)
