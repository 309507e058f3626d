"""The Redis store's outbox: telemetry kept until IoT Hub acknowledges it, in a global order with a queue per
device (keys out:*, translator/store/redis_store.py). Appends are group-committed: those arriving while a
round trip is under way share the next pipeline, and each is one Lua script that refuses it atomically when a
bound is reached."""

from __future__ import annotations

import asyncio
import json
import time

from redis.exceptions import RedisError

from translator.store.base import OutboxFullError, OutboxMessage, StoreError
from translator.store.redis_base import RedisBase

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


class RedisOutbox(RedisBase):
    """The outbox half of the `Store` interface."""

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
