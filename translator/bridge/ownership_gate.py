"""Whether this node may hold a device's session (docs/cluster.md). Alone (SQLite) every device is its own;
on a shared store a device is held by the node that claimed it last."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from translator.cluster.ownership import DeviceClaims, Trigger
from translator.ops.logs import device_log
from translator.store import StoreError

log = logging.getLogger(__name__)


class OwnershipGate:
    def __init__(self, ownership: DeviceClaims | None) -> None:
        self.ownership = ownership  # None: this translator is alone, every device is its own

    async def claim(self, device_id: str, trigger: Trigger) -> bool:
        """Whether this node may hold the device's session: it owns it, or just claimed it."""
        if self.ownership is None:
            return True
        try:
            owner = await self.ownership.claim(device_id, trigger)
        except StoreError as error:
            # Redis away: the device's datagrams are here, so its session is too (the epoch is settled on
            # its next Update); a mere orphan waits for Redis.
            device_log(log, device_id).warning("ownership not claimed (%s)", error)
            return trigger is Trigger.REGISTRATION
        if owner is None:
            device_log(log, device_id).info("owned by another node")
        return owner is not None

    async def still_mine(self, device_id: str) -> bool:
        """The fence of a consuming action (outbox replay, command execution): this node still owns the
        device at the epoch it claimed. Raises StoreError when that cannot be known."""
        return self.ownership is None or await self.ownership.still_mine(device_id)


async def owned_elsewhere(
    owns: Callable[[], Awaitable[bool]], log: logging.LoggerAdapter[Any], what: str, action: str
) -> bool:
    """The fence of a live downlink (a command, a desired-properties update) that reached this node's hub
    session: whether another node claimed the device since (its Register went there; the hub has not closed
    this connection yet), so that `what` is not `action` here. One read on that path only, never per
    telemetry message (issue 17 §5). When the owner cannot be read it goes ahead: the hub sent it to this
    session, the device's live connection."""
    try:
        if await owns():
            return False
    except StoreError as error:
        log.warning("%s: owner not read (%s); %s here", what, error, action)
        return False
    log.info("%s not %s: the device is owned by another node now", what, action)
    return True
