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

from translator.store.redis_base import DEFAULT_PREFIX, POOL_CONNECTIONS
from translator.store.redis_outbox import RedisOutbox
from translator.store.redis_records import RedisRecords, encode_registration

# The connection (redis_base.py), the outbox (redis_outbox.py) and the other records (redis_records.py) are
# each their own module; this one puts them together and keeps the names others import.
__all__ = ["DEFAULT_PREFIX", "POOL_CONNECTIONS", "RedisStore", "encode_registration"]


class RedisStore(RedisOutbox, RedisRecords):
    """The store on one Redis: the `Store` interface (translator/store/base.py), as SqliteStore offers it."""
