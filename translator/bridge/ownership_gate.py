"""Whether this node may hold a device's session (docs/cluster.md). Alone (SQLite) every device is its own;
on a shared store a device is held by the node that claimed it last."""

from __future__ import annotations

import logging

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
