"""The shared store of a cluster: Redis (`store.redis_url`), the same interface as the embedded SQLite store.

Keys (all under one prefix, so several deployments can share a server). Like Leshan's RedisRegistrationStore,
one key per endpoint with a set as the index, but every multi-key change is one Lua script or MULTI/EXEC
instead of Leshan's per-endpoint lock: Redis runs a script atomically, so there is nothing to unlock after a
crash. Scripts compute some key names from stored values, so they need one Redis (or one hash slot), not a
Redis Cluster; a cluster of translators shares one Redis (with replicas).

    reg:<endpoint>      JSON {device_id, data, updated}          regs           set of endpoints
    assign:<device>     JSON {hub, device_id, substatus}
    dev:<device>        JSON DeviceEntry                          dev-ep:<ep>    → device id
    psk-id:<identity>   JSON {endpoint, key (base64)}             psk-ep:<ep>    → identity
    out:seq             counter (the outbox's global order)       out:n          messages in the outbox
    out:q:<device>      zset of sequences                         out:m / out:d  hash seq → message / device
    out:devs            set of devices with messages
    cmd:<id>            JSON PendingCommand                       cmds:<device>  zset id by creation time

The outbox's guarantee (a CON is acknowledged only once its data is safe) holds when the server runs with
`appendonly yes` and `appendfsync always`: Redis answers a write only after its AOF is fsynced. Appends are
group-committed as in SQLite: appends arriving while a round trip is under way share the next pipeline,
and Redis fsyncs once per event-loop pass for every client, so concurrent appends share an fsync.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

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

log = logging.getLogger(__name__)

POOL_CONNECTIONS = 64  # commands in flight at once; more wait (Redis runs them one at a time anyway)

DEFAULT_PREFIX = "iotct:"

# KEYS: out:seq out:q:<device> out:m out:d out:devs out:n; ARGV: device blob limit device_limit
# → sequence, or {-1, total, device_depth} when a bound refuses it.
_APPEND = """
local total = tonumber(redis.call('GET', KEYS[6]) or '0')
local depth = redis.call('ZCARD', KEYS[2])
if total >= tonumber(ARGV[3]) or depth >= tonumber(ARGV[4]) then return {-1, total, depth} end
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, seq)
redis.call('HSET', KEYS[3], seq, ARGV[2])
redis.call('HSET', KEYS[4], seq, ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('INCR', KEYS[6])
return {seq, total + 1, depth + 1}
"""

# KEYS: out:m out:d out:devs out:n; ARGV: prefix of out:q:, sequences… → {device, count, …} removed.
_REMOVE = """
local counts = {}
for i = 2, #ARGV do
  local device = redis.call('HGET', KEYS[2], ARGV[i])
  if device then
    local queue = ARGV[1] .. device
    redis.call('ZREM', queue, ARGV[i])
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('DECR', KEYS[4])
    counts[device] = (counts[device] or 0) + 1
    if redis.call('ZCARD', queue) == 0 then redis.call('SREM', KEYS[3], device) end
  end
end
local out = {}
for device, count in pairs(counts) do out[#out + 1] = device; out[#out + 1] = count end
return out
"""

# INSERT OR REPLACE with two unique columns: a new row displaces every row that shares either.
# KEYS: by-primary <pk> key, by-secondary <sk> key; ARGV: primary prefix, secondary prefix, pk, sk, value.
_PUT_UNIQUE_PAIR = """
local old = redis.call('GET', KEYS[1])
if old then
  local old_sk = cjson.decode(old)['_sk']
  if old_sk ~= ARGV[4] then redis.call('DEL', ARGV[2] .. old_sk) end
end
local other = redis.call('GET', KEYS[2])
if other and other ~= ARGV[3] then redis.call('DEL', ARGV[1] .. other) end
redis.call('SET', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[3])
return 1
"""

# KEYS: by-secondary key; ARGV: primary prefix → removes both directions.
_REMOVE_BY_SECONDARY = """
local pk = redis.call('GET', KEYS[1])
if pk then redis.call('DEL', ARGV[1] .. pk) end
redis.call('DEL', KEYS[1])
return pk and 1 or 0
"""

# KEYS: cmd:<id>; ARGV: prefix of cmds:
_REMOVE_COMMAND = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
redis.call('ZREM', ARGV[1] .. cjson.decode(raw)['device_id'], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
"""


def encode_registration(record: RegistrationRecord) -> str:
    return json.dumps({"device_id": record.device_id, "data": record.data, "updated": record.updated})


def _message_blob(
    payload: bytes, component: str | None, creation_time: float | None, properties: dict[str, str]
) -> bytes:
    # A JSON header line then the raw payload: no base64 on the hot path.
    header = json.dumps({"c": component, "t": creation_time, "p": properties, "e": time.time()})
    return header.encode() + b"\n" + payload


def _message(sequence: int, device_id: str, blob: bytes) -> OutboxMessage:
    header, _, payload = blob.partition(b"\n")
    meta = json.loads(header)
    return OutboxMessage(sequence, device_id, payload, meta["c"], meta["t"], meta["p"], meta["e"])


class RedisStore(StoreLife):
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
        self._pending: list[tuple[str, bytes, asyncio.Future[int]]] = []
        self._size = 0  # the outbox's depth as last seen (for metrics, without I/O)
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

    # -- assignments ------------------------------------------------------------------------------

    async def get_assignment(self, device_id: str) -> HubAssignment | None:
        raw = await self._run("assignment read", self.redis.get(self.key("assign", device_id)))
        if raw is None:
            return None
        value = json.loads(raw)
        return HubAssignment(value["hub"], value["device_id"], value["substatus"], value.get("gateway_id"))

    async def put_assignment(self, device_id: str, assignment: HubAssignment) -> None:
        value = {
            "hub": assignment.hub,
            "device_id": assignment.device_id,
            "substatus": assignment.substatus,
            "gateway_id": assignment.gateway_id,
        }
        await self._run("assignment write", self.redis.set(self.key("assign", device_id), json.dumps(value)))

    async def forget_assignment(self, device_id: str) -> None:
        await self._run("assignment removal", self.redis.delete(self.key("assign", device_id)))

    # -- registrations ----------------------------------------------------------------------------

    async def save_registration(self, record: RegistrationRecord) -> None:
        await self.write_registrations([record], [])

    async def delete_registration(self, endpoint: str) -> None:
        await self.write_registrations([], [endpoint])

    async def write_registrations(self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]) -> None:
        if not saves and not deletes:
            return
        async with self.redis.pipeline(transaction=True) as pipe:  # MULTI/EXEC: all or nothing
            for record in saves:
                pipe.set(self.key("reg", record.endpoint), encode_registration(record))
                pipe.sadd(self.key("regs"), record.endpoint)
            for endpoint in deletes:
                pipe.delete(self.key("reg", endpoint))
                pipe.srem(self.key("regs"), endpoint)
            await self._run("registrations write", pipe.execute())

    async def registrations(self) -> list[RegistrationRecord]:
        members = await self._run("registrations read", self.redis.smembers(self.key("regs")))
        endpoints = sorted(m.decode() for m in members)
        if not endpoints:
            return []
        values = await self._run(
            "registrations read", self.redis.mget([self.key("reg", e) for e in endpoints])
        )
        records = []
        for endpoint, raw in zip(endpoints, values, strict=True):
            if raw is not None:
                value = json.loads(raw)
                records.append(
                    RegistrationRecord(endpoint, value["device_id"], value["data"], value["updated"])
                )
        return records

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
        """Keep a message durably; return its sequence number once Redis has it (fsynced with appendfsync
        always), or raise OutboxFullError."""
        blob = _message_blob(payload, component, creation_time, properties or {})
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((device_id, blob, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="store-outbox-commit")
        return await done

    async def _flush(self) -> None:
        append = self._scripts(_APPEND)
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for device_id, blob, _ in batch:
                        keys = [
                            self.key("out", "seq"),
                            self.key("out", "q", device_id),
                            self.key("out", "m"),
                            self.key("out", "d"),
                            self.key("out", "devs"),
                            self.key("out", "n"),
                        ]
                        await append(
                            keys, [device_id, blob, self._outbox_limit, self._outbox_device_limit], pipe
                        )
                    results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as error:
                results = [error] * len(batch)
            for (device_id, _, done), result in zip(batch, results, strict=True):
                if done.done():
                    continue
                if isinstance(result, BaseException):
                    done.set_exception(StoreError(f"outbox write failed: {result}"))
                    continue
                sequence, total, depth = (int(v) for v in result)
                self._size = total
                if sequence < 0:
                    done.set_exception(
                        OutboxFullError(
                            f"outbox full ({total} messages, {depth} for {device_id})",
                            retry_after=self._full_retry_after,
                        )
                    )
                else:
                    done.set_result(sequence)

    async def outbox_peek(self, device_id: str, limit: int = 100) -> list[OutboxMessage]:
        raw = await self._run("outbox read", self.redis.zrange(self.key("out", "q", device_id), 0, limit - 1))
        sequences = [int(s) for s in raw]
        if not sequences:
            return []
        blobs = await self._run("outbox read", self.redis.hmget(self.key("out", "m"), sequences))
        return [
            _message(sequence, device_id, blob)
            for sequence, blob in zip(sequences, blobs, strict=True)
            if blob is not None
        ]

    async def outbox_remove(self, sequences: list[int]) -> None:
        if not sequences:
            return
        keys = [self.key("out", "m"), self.key("out", "d"), self.key("out", "devs"), self.key("out", "n")]
        removed = await self._script("outbox removal", _REMOVE, keys, [self.key("out", "q", ""), *sequences])
        self._size = max(0, self._size - sum(int(v) for v in removed[1::2]))

    async def outbox_depth(self, device_id: str | None = None) -> int:
        if device_id is not None:
            return int(await self._run("outbox read", self.redis.zcard(self.key("out", "q", device_id))))
        self._size = int(await self._run("outbox read", self.redis.get(self.key("out", "n"))) or 0)
        return self._size

    def outbox_size(self) -> int:
        return self._size

    async def outbox_devices(self) -> list[str]:
        members = await self._run("outbox read", self.redis.smembers(self.key("out", "devs")))
        return sorted(m.decode() for m in members)

    # -- commands ---------------------------------------------------------------------------------

    async def add_command(self, command: PendingCommand) -> None:
        value = {
            "device_id": command.device_id,
            "name": command.name,
            "payload": command.payload,
            "deadline": command.deadline,
            "created": command.created,
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("cmd", command.command_id), json.dumps(value))
            pipe.zadd(self.key("cmds", command.device_id), {command.command_id: command.created})
            await self._run("command write", pipe.execute())

    async def commands(self, device_id: str) -> list[PendingCommand]:
        ids = [
            i.decode()
            for i in await self._run("command read", self.redis.zrange(self.key("cmds", device_id), 0, -1))
        ]
        if not ids:
            return []
        values = await self._run("command read", self.redis.mget([self.key("cmd", i) for i in ids]))
        found = []
        for command_id, raw in zip(ids, values, strict=True):
            if raw is not None:
                v = json.loads(raw)
                found.append(
                    PendingCommand(
                        command_id, v["device_id"], v["name"], v["payload"], v["deadline"], v["created"]
                    )
                )
        return found

    async def remove_command(self, command_id: str) -> None:
        await self._script(
            "command removal",
            _REMOVE_COMMAND,
            [self.key("cmd", command_id)],
            [self.key("cmds", ""), command_id],
        )

    # -- devices ----------------------------------------------------------------------------------

    async def put_device(self, entry: DeviceEntry) -> None:
        value = {
            "_sk": entry.endpoint,
            "codec": entry.codec,
            "model_id": entry.model_id,
            "symmetric_key": entry.symmetric_key,
            "certificate": entry.certificate,
            "private_key": entry.private_key,
            "attributes": dict(entry.attributes),
            "connection": entry.connection,
        }
        await self._script(
            "device write",
            _PUT_UNIQUE_PAIR,
            [self.key("dev", entry.device_id), self.key("dev-ep", entry.endpoint)],
            [self.key("dev", ""), self.key("dev-ep", ""), entry.device_id, entry.endpoint, json.dumps(value)],
        )
        await self._run("device write", self.redis.sadd(self.key("devs"), entry.device_id))

    def _device(self, device_id: str, raw: bytes) -> DeviceEntry:
        v = json.loads(raw)
        return DeviceEntry(
            device_id,
            v["_sk"],
            v["codec"],
            v["model_id"],
            v["symmetric_key"],
            v["certificate"],
            v["private_key"],
            tuple(v.get("attributes", {}).items()),  # a device written before attributes existed: none
            v.get("connection"),  # absent from entries written before the column existed
        )

    async def device_for_endpoint(self, endpoint: str) -> DeviceEntry | None:
        device_id = await self._run("device read", self.redis.get(self.key("dev-ep", endpoint)))
        if device_id is None:
            return None
        raw = await self._run("device read", self.redis.get(self.key("dev", device_id.decode())))
        return None if raw is None else self._device(device_id.decode(), raw)

    async def devices(self) -> list[DeviceEntry]:
        ids = sorted(
            m.decode() for m in await self._run("device read", self.redis.smembers(self.key("devs")))
        )
        if not ids:
            return []
        values = await self._run("device read", self.redis.mget([self.key("dev", i) for i in ids]))
        # A device displaced by another's endpoint has no key any more; its id leaves the index lazily.
        return [self._device(i, raw) for i, raw in zip(ids, values, strict=True) if raw is not None]

    # -- DTLS pre-shared keys (one identity per endpoint; read at every handshake: edits apply at once) ------

    async def put_psk(self, entry: PskEntry) -> None:
        value = {"_sk": entry.endpoint, "key": base64.b64encode(entry.key).decode()}
        await self._script(
            "PSK write",
            _PUT_UNIQUE_PAIR,
            [self.key("psk-id", entry.identity), self.key("psk-ep", entry.endpoint)],
            [
                self.key("psk-id", ""),
                self.key("psk-ep", ""),
                entry.identity,
                entry.endpoint,
                json.dumps(value),
            ],
        )

    async def remove_psk(self, endpoint: str) -> None:
        await self._script(
            "PSK removal", _REMOVE_BY_SECONDARY, [self.key("psk-ep", endpoint)], [self.key("psk-id", "")]
        )

    async def psk_for_identity(self, identity: str) -> PskEntry | None:
        raw = await self._run("PSK read", self.redis.get(self.key("psk-id", identity)))
        if raw is None:
            return None
        value = json.loads(raw)
        return PskEntry(identity, value["_sk"], base64.b64decode(value["key"]))

    async def psk_for_endpoint(self, endpoint: str) -> PskEntry | None:
        identity = await self._run("PSK read", self.redis.get(self.key("psk-ep", endpoint)))
        return None if identity is None else await self.psk_for_identity(identity.decode())
