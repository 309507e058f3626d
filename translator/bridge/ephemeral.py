"""Which kind of session a device's life gets: one held MQTT session from the pool (persistent), or a
sessionless uplink (ephemeral: translator/iotc/client/ephemeral.py). The devices-CSV row wins over the
codec's `[template] connection`; a device of the HTTP Device Bridge drop-in that neither names takes
`ephemeral.http_connection`."""

from __future__ import annotations

import logging

from translator.codec import Codec
from translator.codec.spec import Connection
from translator.iotc.client.ephemeral import EphemeralSession, EphemeralSettings, EphemeralUplinks
from translator.iotc.client.pool import DeviceSpec, SessionPool
from translator.iotc.client.session import DeviceSession
from translator.iotc.protocol.approval_wait import ApprovalPolicy
from translator.iotc.protocol.backoff import BackoffPolicy
from translator.iotc.protocol.sas import TokenPolicy
from translator.ops.logs import device_log
from translator.settings import Settings
from translator.store import DeviceEntry

log = logging.getLogger(__name__)


def connection_of(entry: DeviceEntry | None, codec: Codec | None, fallback: Connection | None) -> Connection:
    if entry is not None and entry.connection in ("persistent", "ephemeral"):
        return "ephemeral" if entry.connection == "ephemeral" else "persistent"
    if codec is not None and codec.connection == "ephemeral":
        return "ephemeral"
    return fallback or "persistent"


def uplink_settings(settings: Settings) -> EphemeralSettings:
    iotc, section = settings.iotc, settings.ephemeral
    return EphemeralSettings(
        transport=section.transport,
        https_port=section.hub_https_port,
        linger=section.linger,
        timeout=max(iotc.telemetry_timeout, 1.0),
        backoff=BackoffPolicy(base=iotc.reconnect_min, cap=iotc.reconnect_max),
        token_policy=TokenPolicy(ttl=iotc.token_ttl),
        approval=ApprovalPolicy(base=iotc.approval_retry, cap=iotc.approval_retry_max),
    )


class Sessions:
    """Opens the session of a device's life, persistent or ephemeral."""

    def __init__(self, pool: SessionPool, settings: Settings) -> None:
        self.pool = pool
        self.uplinks: EphemeralUplinks = pool.ephemeral_uplinks(uplink_settings(settings))

    async def open(
        self, spec: DeviceSpec, connection: Connection, *, pinned: bool
    ) -> DeviceSession | EphemeralSession:
        if connection == "ephemeral":
            device_log(log, spec.device_id).info(
                "ephemeral (%s), no session held", self.uplinks.settings.transport
            )
            return self.uplinks.session(
                spec.device_id, spec.credential, self.pool.provisioner(spec), spec.model_id
            )
        session = await self.pool.session(spec)
        # Commands and writable properties arrive only while connected: registered devices stay connected.
        self.pool.pin(spec.device_id, pinned)
        return session
