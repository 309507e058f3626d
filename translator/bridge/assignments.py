"""The session pool's assignment cache, kept in the store.

The IoT Central face speaks of DPS's `Assigned`; the store keeps its own `HubAssignment` record, so neither
depends on the other and the translation happens here, where the two faces meet.
"""

from __future__ import annotations

from translator.iotc.protocol.dps import Assigned
from translator.store import HubAssignment, Store


class StoreAssignments:
    """`translator.iotc.client.pool.AssignmentCache` over a `Store`."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get_assignment(self, device_id: str) -> Assigned | None:
        kept = await self._store.get_assignment(device_id)
        if kept is None:
            return None
        return Assigned(kept.hub, kept.device_id, kept.substatus, gateway_id=kept.gateway_id)

    async def put_assignment(self, device_id: str, assignment: Assigned) -> None:
        record = HubAssignment(
            assignment.assigned_hub, assignment.device_id, assignment.substatus, assignment.gateway_id
        )
        await self._store.put_assignment(device_id, record)
