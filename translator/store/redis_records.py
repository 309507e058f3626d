"""The Redis store's records: hub assignments, registrations, pending commands, pre-registered devices and
DTLS pre-shared keys (key layout: translator/store/redis_store.py). A change to several keys is one Lua
script or MULTI/EXEC."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from translator.store.base import (
    DeviceEntry,
    HubAssignment,
    PendingCommand,
    PskEntry,
    RegistrationRecord,
)
from translator.store.redis_base import RedisBase

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


class RedisRecords(RedisBase):
    """The `Store` interface but the outbox."""

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
