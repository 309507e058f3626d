"""The `[store]` settings section: the SQLite file or the shared Redis, the outbox's limits, and this
translator's place among those sharing Redis (node id, heartbeat)."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from translator.settings_types import SECTION, OptionalFile


@dataclass(frozen=True, slots=True, config=SECTION)
class StoreSettings:
    path: OptionalFile = Field(
        default=None, description="the SQLite store; default: <state_dir>/translator.db"
    )
    outbox_limit: int = Field(
        default=100_000, ge=1, description="telemetry messages held in the outbox, in all"
    )
    outbox_device_limit: int = Field(default=10_000, ge=1, description="telemetry messages held per device")
    # Several translators share one Redis store; run it with appendonly yes, appendfsync always.
    redis_url: str = Field(
        default="",
        pattern=r"^(|(redis|rediss|unix)://.+)$",
        description="a shared Redis (redis://host:port/db, rediss://, unix://) instead of the SQLite file "
        "(docs/cluster.md)",
    )
    redis_prefix: str = Field(
        default="iotct:",
        min_length=1,
        description="every Redis key under it: deployments can share one Redis",
    )
    node_id: str = Field(
        default="",
        description="with redis_url: this translator's name among those sharing Redis "
        "(default: host-pid-random)",
    )
    heartbeat_ttl: float = Field(
        default=10.0,
        gt=0,
        description="with redis_url: seconds without this node's heartbeat before others take its devices",
    )
    redis_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="with redis_url: seconds a Redis command or connect may take before it fails (a store "
        "error: 5.03 to the device, nothing acknowledged) instead of hanging",
    )
