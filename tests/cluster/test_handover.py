"""The check before a device's session reconnects (cluster/handover.py), the claim before a Register is
answered (cluster/register_claim.py) and the bounded concurrent claims of a node's start (cluster/claims.py),
on stand-ins for Redis: what each answer of the ownership leads to."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from translator.cluster.claims import claimed
from translator.cluster.handover import HandOver
from translator.cluster.ownership import Owner, Trigger
from translator.cluster.register_claim import RegisterClaim
from translator.coap import BackPressure, DeviceIdentity
from translator.store import RegistrationRecord, StoreError


class _Claims:
    """Ownership as a dict; `down` makes every call fail as an unreachable Redis does."""

    def __init__(self, me: str, owners: dict[str, Owner]) -> None:
        self.me = me
        self.owners = owners
        self.down = False
        self.claims: list[tuple[str, Trigger]] = []

    async def claim(self, device_id: str, trigger: Trigger) -> Owner | None:
        if self.down:
            raise StoreError("redis unreachable")
        self.claims.append((device_id, trigger))
        current = self.owners.get(device_id)
        if current is None:
            self.owners[device_id] = Owner(self.me, 1)
        elif current.node != self.me:
            return None  # another live node's
        return self.owners[device_id]

    async def still_mine(self, device_id: str) -> bool:
        return self.owners.get(device_id) == Owner(self.me, 1)

    async def owner(self, device_id: str) -> Owner | None:
        return self.owners.get(device_id)

    async def write_registrations(self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]) -> int:
        return 0


async def test_another_live_owner_means_no_reconnect_and_the_life_released() -> None:
    released: list[str] = []
    claims = _Claims("a", {"d1": Owner("b", 2)})
    reason = await HandOver(claims, released.append).before_reconnect("d1")
    assert reason == "the device moved to node b (epoch 2)"
    assert released == ["d1"]
    assert claims.claims == [("d1", Trigger.ORPHANED)]  # never a REGISTRATION claim: that would steal it


async def test_own_or_unowned_devices_reconnect() -> None:
    released: list[str] = []
    claims = _Claims("a", {"mine": Owner("a", 1)})
    handover = HandOver(claims, released.append)
    assert await handover.before_reconnect("mine") is None
    assert await handover.before_reconnect("nobodys") is None  # claimed on the way
    assert claims.owners["nobodys"] == Owner("a", 1)
    assert released == []


async def test_an_unreachable_redis_reconnects_rather_than_dropping_the_device() -> None:
    released: list[str] = []
    claims = _Claims("a", {"d1": Owner("b", 2)})
    claims.down = True
    assert await HandOver(claims, released.append).before_reconnect("d1") is None
    assert released == []


async def test_start_up_claims_run_concurrently_and_bounded() -> None:
    in_flight = most = 0
    gate = asyncio.Event()

    async def claim(device_id: str, trigger: Trigger) -> bool:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if most == 8:
            gate.set()
        async with asyncio.timeout(5):
            await gate.wait()  # serial claims would never get a second one in flight: this would time out
        in_flight -= 1
        return not device_id.endswith("7")

    devices = [f"dev-{n}" for n in range(40)] + ["dev-1"]  # a duplicate is asked once
    granted = await claimed(claim, devices, Trigger.ORPHANED, concurrency=8)
    assert most == 8
    assert granted == {f"dev-{n}" for n in range(40) if n % 10 != 7}


async def test_a_register_claims_its_device_or_is_refused_503_when_redis_is_away() -> None:
    claims = _Claims("a", {"moved": Owner("b", 2)})
    gate = RegisterClaim(claims, retry_after=7)
    await gate(DeviceIdentity("moved", "moved"))
    assert claims.claims == [("moved", Trigger.REGISTRATION)]  # its datagrams are here now
    claims.down = True
    with pytest.raises(BackPressure) as refused:
        await gate(DeviceIdentity("moved", "moved"))
    assert refused.value.retry_after == 7
