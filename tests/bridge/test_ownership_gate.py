"""The bridge's ownership gate (translator/bridge/ownership_gate.py): alone every device is this node's; on
a shared store a claim decides, and a store that cannot answer lets a registration through (its datagrams
are here) but not an orphan (it waits for the store)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from translator.bridge.ownership_gate import OwnershipGate
from translator.cluster.ownership import Owner, Trigger
from translator.store import RegistrationRecord, StoreError


class FakeClaims:
    def __init__(self, owner: Owner | None = None, *, failing: bool = False) -> None:
        self._owner = owner
        self._failing = failing
        self.claims: list[tuple[str, Trigger]] = []

    async def claim(self, device_id: str, trigger: Trigger) -> Owner | None:
        self.claims.append((device_id, trigger))
        if self._failing:
            raise StoreError("redis away")
        return self._owner

    async def still_mine(self, device_id: str) -> bool:
        if self._failing:
            raise StoreError("redis away")
        return self._owner is not None

    async def owner(self, device_id: str) -> Owner | None:
        return self._owner

    async def write_registrations(self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]) -> int:
        return 0


@pytest.mark.parametrize("trigger", list(Trigger))
async def test_alone_every_device_is_this_nodes(trigger: Trigger) -> None:
    gate = OwnershipGate(None)
    assert await gate.claim("dev-1", trigger)
    assert await gate.still_mine("dev-1")


@pytest.mark.parametrize("trigger", list(Trigger))
async def test_on_a_shared_store_the_claim_decides(trigger: Trigger) -> None:
    mine, theirs = FakeClaims(Owner("node-a", 3)), FakeClaims(None)
    assert await OwnershipGate(mine).claim("dev-1", trigger)
    assert not await OwnershipGate(theirs).claim("dev-1", trigger)
    assert mine.claims == [("dev-1", trigger)]
    assert await OwnershipGate(mine).still_mine("dev-1")
    assert not await OwnershipGate(theirs).still_mine("dev-1")


async def test_a_store_that_cannot_answer_lets_a_registration_through_but_not_an_orphan() -> None:
    gate = OwnershipGate(FakeClaims(failing=True))
    assert await gate.claim("dev-1", Trigger.REGISTRATION)
    assert not await gate.claim("dev-1", Trigger.ORPHANED)
    with pytest.raises(StoreError):  # the fence cannot tell: the consuming action must not go ahead
        await gate.still_mine("dev-1")
