"""No fighting over a device's hub connection (issue 17 §3): before a device's session reconnects, the node
re-reads the device's owner; a node that lost the device lets it go quietly instead of reconnecting.

Why here and not in the session: IoT Hub allows one connection per device identity and closes the previous
one when a new one arrives (error 400027 ConnectionForcefullyClosedOnNewConnection, which shows in the hub's
diagnostics, https://learn.microsoft.com/azure/iot-hub/troubleshoot-error-codes). Over MQTT 3.1.1 the
server has no DISCONNECT to send (https://learn.microsoft.com/azure/iot-hub/iot-hub-mqtt-support): the
closed connection looks like any network failure. So the session cannot tell a hand-over from an outage;
the ownership record can. Without this check the loser reconnects after its backoff, which closes the
winner's connection, which reconnects... — 13 hub connects and DPS registrations in 37 s for one device.

The decision is the orphan claim (`ownership.decide`): the device is this node's, or nobody's, or its owner
is dead → keep it (claimed if need be) and reconnect; another live node owns it → end the device's life
here: no DPS, no backoff loop, one log line naming the owner. Redis unreachable → it cannot be known:
reconnect as before (a fight during a Redis outage is bounded by the backoff, and ends at the next check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from translator.cluster.ownership import DeviceClaims, Trigger
from translator.store import StoreError

log = logging.getLogger(__name__)


class HandOver:
    """The bridge's check before a device's session reconnects; `release(device_id)` ends its life here
    (called without waiting: the session asking is one the release closes)."""

    def __init__(self, ownership: DeviceClaims, release: Callable[[str], None]) -> None:
        self._ownership = ownership
        self._release = release

    async def before_reconnect(self, device_id: str) -> str | None:
        """None: reconnect. Otherwise why not (the device is another live node's now)."""
        try:
            if await self._ownership.claim(device_id, Trigger.ORPHANED) is not None:
                return None
        except StoreError as error:
            log.warning("device %s: owner unknown before reconnecting, reconnecting (%s)", device_id, error)
            return None
        try:
            owner = await self._ownership.owner(device_id)
        except StoreError:
            owner = None
        who = f"node {owner.node} (epoch {owner.epoch})" if owner is not None else "another node"
        log.info("device %s: owned by %s now; this node lets it go (no reconnect, no DPS)", device_id, who)
        self._release(device_id)
        return f"the device moved to {who}"
