"""Ownership on Redis: the claim (a Lua compare-and-set with an epoch bump), the node's heartbeat, fences.

Keys, under the store's prefix:

    own:<device>    hash {node, epoch}: the owner, changed only by the claim script
    owned:<node>    set of the devices a node owns (for taking a dead node's devices)
    node:<node>     the heartbeat: a key with a TTL, refreshed by the node while it lives
    nodes           sorted set: every node that beat, scored by when its heartbeat runs out (Redis's clock)
    owners          set of the nodes that won a claim and are not forgotten (where the sweeper looks)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from translator.cluster.ownership import Decision, HeartbeatPolicy, Owner, Trigger, Verdict, decide, fenced
from translator.cluster.tasks import cancelled, every
from translator.store.base import RegistrationRecord, StoreError
from translator.store.redis_store import encode_registration

log = logging.getLogger(__name__)

# KEYS: own:<device>; ARGV: me, expected epoch, orphan-only (1/0), prefix of node:, prefix of owned:, device,
# the owners index → {1, node, epoch} claimed, or {0, node, epoch} as it stands (someone else moved first, or
# its owner lives).
_CLAIM = """
local current = redis.call('HMGET', KEYS[1], 'node', 'epoch')
local node, epoch = current[1], tonumber(current[2] or '0')
if epoch ~= tonumber(ARGV[2]) then return {0, node or '', epoch} end
if ARGV[3] == '1' and node and node ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. node) == 1 then
  return {0, node, epoch}
end
epoch = epoch + 1
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'epoch', epoch)
if node then redis.call('SREM', ARGV[5] .. node, ARGV[6]) end
redis.call('SADD', ARGV[5] .. ARGV[1], ARGV[6])
redis.call('SADD', ARGV[7], ARGV[1])
return {1, ARGV[1], epoch}
"""

# KEYS: owners, node:<node>, owned:<node>; ARGV: node → 1 when the node left the index: only once it has no
# heartbeat and owns nothing (a node that came back, or a device not yet taken, keeps it listed).
_FORGET_NODE = """
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('SCARD', KEYS[3]) > 0 then return 0 end
return redis.call('SREM', KEYS[1], ARGV[1])
"""

# The journal's batch, fenced record by record. ARGV: me, key prefix, number of saves, then each save as
# endpoint, device, epoch, value, then the endpoints to delete → how many were refused.
# A save needs the stored owner to be this node at the epoch it claimed; a delete, that the device of the
# stored record is this node's (or nobody's): a stale registration expiring here must not delete the record
# the new owner wrote.
_FENCED_REGISTRATIONS = """
local me, p, saves = ARGV[1], ARGV[2], tonumber(ARGV[3])
local refused = 0
local i = 4
for _ = 1, saves do
  local endpoint, device, epoch, value = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  local owner = redis.call('HMGET', p .. 'own:' .. device, 'node', 'epoch')
  if owner[1] == me and owner[2] == epoch then
    redis.call('SET', p .. 'reg:' .. endpoint, value)
    redis.call('SADD', p .. 'regs', endpoint)
  else
    refused = refused + 1
  end
end
while i <= #ARGV do
  local endpoint = ARGV[i]
  i = i + 1
  local raw = redis.call('GET', p .. 'reg:' .. endpoint)
  local node = raw and redis.call('HGET', p .. 'own:' .. cjson.decode(raw)['device_id'], 'node')
  if node and node ~= me then
    refused = refused + 1
  else
    redis.call('DEL', p .. 'reg:' .. endpoint)
    redis.call('SREM', p .. 'regs', endpoint)
  end
end
return refused
"""

# Redis's clock, not the nodes': nodes whose clocks disagree still agree on who is alive.
_NOW_MS = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""
# KEYS: node:<node>, nodes; ARGV: ttl in ms, node.
_BEAT = (
    _NOW_MS
    + """
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('ZADD', KEYS[2], ms + tonumber(ARGV[1]), ARGV[2])
"""
)
# KEYS: nodes; ARGV: ms after which a dead node is forgotten → how many nodes' heartbeats run now.
_ALIVE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - tonumber(ARGV[1]))
return redis.call('ZCOUNT', KEYS[1], ms, '+inf')
"""
)
FORGET_DEAD_AFTER_MS = 24 * 3600 * 1000

CLAIM_ATTEMPTS = 3  # a claim lost to a concurrent one is decided again on what won, a bounded number of times


def default_node_id() -> str:
    """Unique per process: a restarted process is a new node, and its old self's devices are orphans."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisOwnership:
    """One node's view of ownership. Claims and fences go to Redis; `held` is answered locally, so the
    telemetry path never waits for Redis (ownership is checked at registration, update and hand-over)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        node: str,
        *,
        prefix: str = "iotct:",
        heartbeat: HeartbeatPolicy | None = None,
    ) -> None:
        self.redis = redis
        self.node = node
        self.prefix = prefix
        self.heartbeat = heartbeat or HeartbeatPolicy()
        self._held: dict[str, int] = {}  # device → the epoch this node claimed
        self._beating: asyncio.Task[None] | None = None
        self._claim: AsyncScript = redis.register_script(_CLAIM)
        self._fenced_registrations: AsyncScript = redis.register_script(_FENCED_REGISTRATIONS)
        self._beat: AsyncScript = redis.register_script(_BEAT)
        self._alive: AsyncScript = redis.register_script(_ALIVE)
        self._forget_node: AsyncScript = redis.register_script(_FORGET_NODE)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _call(self, what: str, call: Any) -> Any:
        try:
            return await call
        except (RedisError, OSError) as error:
            raise StoreError(f"{what} failed: {error}") from error

    # -- the heartbeat ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.beat()  # alive before the first claim: nobody takes a device from a node not yet beating
        self._beating = asyncio.create_task(self._beat_forever(), name=f"heartbeat-{self.node}")

    async def beat(self) -> None:
        keys = [self._key("node", self.node), self._key("nodes")]
        await self._call("heartbeat", self._beat(keys=keys, args=[self.heartbeat.ttl_ms, self.node]))

    async def _beat_forever(self) -> None:
        # A beat that fails may get through next time, before the TTL runs out.
        interval = self.heartbeat.interval
        await every(lambda: interval, self.beat, what=f"node {self.node}: heartbeat", log=log)

    async def stop(self, *, leave: bool = True) -> None:
        """Stop beating; with `leave`, remove the heartbeat so others take this node's devices at once
        instead of after the TTL (a graceful shutdown). `leave=False` is what a crash looks like."""
        await cancelled(self._beating)
        self._beating = None
        if leave:
            with contextlib.suppress(StoreError):
                removal = self.redis.pipeline(transaction=True)
                removal.delete(self._key("node", self.node))
                removal.zrem(self._key("nodes"), self.node)
                await self._call("heartbeat removal", removal.execute())

    async def alive(self, node: str) -> bool:
        return bool(await self._call("heartbeat read", self.redis.exists(self._key("node", node))))

    async def nodes_alive(self) -> int:
        """How many nodes beat now, this one included."""
        keys = [self._key("nodes")]
        return int(await self._call("node count", self._alive(keys=keys, args=[FORGET_DEAD_AFTER_MS])))

    # -- owners -----------------------------------------------------------------------------------

    async def owner(self, device_id: str) -> Owner | None:
        node, epoch = await self._call(
            "owner read", self.redis.hmget(self._key("own", device_id), "node", "epoch")
        )
        return None if node is None else Owner(node.decode(), int(epoch or 0))

    def held(self, device_id: str) -> Owner | None:
        """This node's claim on the device as it last knew it (no I/O)."""
        epoch = self._held.get(device_id)
        return None if epoch is None else Owner(self.node, epoch)

    async def claim(self, device_id: str, trigger: Trigger) -> Owner | None:
        """Make this node the device's owner if `trigger` justifies it; the owner it holds, or None when
        another node keeps the device."""
        for _ in range(CLAIM_ATTEMPTS):
            current = await self.owner(device_id)
            alive = current is not None and current.node != self.node and await self.alive(current.node)
            decision = decide(self.node, current, trigger, owner_alive=alive)
            if decision.verdict is Verdict.KEEP:
                assert current is not None
                self._held[device_id] = current.epoch
                return current
            if decision.verdict is Verdict.LEAVE:
                self._held.pop(device_id, None)
                return None
            won = await self._cas(device_id, decision, orphan_only=trigger is Trigger.ORPHANED)
            if won is not None:
                self._held[device_id] = won.epoch
                log.info("node %s owns %s (epoch %d, %s)", self.node, device_id, won.epoch, trigger.value)
                return won
        self._held.pop(device_id, None)
        return None

    async def _cas(self, device_id: str, decision: Decision, *, orphan_only: bool) -> Owner | None:
        args: list[str | int] = [
            self.node,
            decision.expected_epoch,
            1 if orphan_only else 0,
            self._key("node", ""),
            self._key("owned", ""),
            device_id,
            self._key("owners"),
        ]
        claimed, node, epoch = await self._call("claim", self._claim([self._key("own", device_id)], args))
        return Owner(node.decode() if isinstance(node, bytes) else str(node), int(epoch)) if claimed else None

    async def still_mine(self, device_id: str) -> bool:
        """The fence of a consuming action (outbox replay, command execution): one read. A device found
        lost is forgotten here, so `held` stops answering for it."""
        if fenced(self.held(device_id), await self.owner(device_id)):
            return True
        self._held.pop(device_id, None)
        return False

    async def owned_by(self, node: str) -> set[str]:
        members = await self._call("owned read", self.redis.smembers(self._key("owned", node)))
        return {m.decode() for m in members}

    # -- dead owners (the sweeper's reads) --------------------------------------------------------

    async def dead_nodes(self) -> list[str]:
        """Nodes in the index whose heartbeat is gone (never this one): their devices are orphans."""
        listed = await self._call("owners read", self.redis.smembers(self._key("owners")))
        others = sorted(m.decode() for m in listed if m.decode() != self.node)
        if not others:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for node in others:
                pipe.exists(self._key("node", node))
            beating = await self._call("heartbeats read", pipe.execute())
        return [node for node, alive in zip(others, beating, strict=True) if not alive]

    async def forget_node(self, node: str) -> bool:
        """Drop a dead node from the index once it owns nothing (one script: it may come back meanwhile)."""
        keys = [self._key("owners"), self._key("node", node), self._key("owned", node)]
        return bool(await self._call("node removal", self._forget_node(keys, [node])))

    async def write_registration(self, record: RegistrationRecord) -> bool:
        """Write one registration if this node still owns its device (see write_registrations)."""
        return await self.write_registrations([record], []) == 0

    async def write_registrations(self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]) -> int:
        """The registration journal's writes, fenced in one script: no write from a node that lost the
        device between its check and its write, no delete of a record another node's device holds. Returns
        how many were refused (RegistrationJournal takes this object in place of the store)."""
        args: list[str | int] = [self.node, self.prefix, 0]
        refused = 0
        for record in saves:
            mine = self.held(record.device_id)
            if mine is None:
                refused += 1
                continue
            args += [record.endpoint, record.device_id, mine.epoch, encode_registration(record)]
            args[2] = int(args[2]) + 1
        args += list(deletes)
        if len(args) == 3:
            return refused
        refused += int(await self._call("registrations write", self._fenced_registrations([], args)))
        if refused:
            log.info("node %s: %d registration writes refused (devices owned elsewhere)", self.node, refused)
        return refused
