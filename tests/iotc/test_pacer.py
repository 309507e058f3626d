"""The pacers (translator/iotc/client/pacer.py) and the reported-patch limits
(translator/iotc/protocol/reported_limits.py): pure parts with a fake clock, the queue with real asyncio time
(short, bounded)."""

from __future__ import annotations

import asyncio
import time

import pytest

from translator.iotc.client.pacer import RECOVERY, DeviceRate, FleetPacing, Pacer, PacingSettings
from translator.iotc.protocol.reported_limits import within_limits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_with_a_fake_clock() -> None:
    clock = Clock()
    pacer = Pacer("t", 2.0, 2, clock=clock)
    assert [pacer.try_acquire() for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert pacer.try_acquire()
    assert not pacer.try_acquire()
    assert pacer.figures().granted == 3


def test_a_throttle_halves_the_rate_pauses_and_recovers() -> None:
    clock = Clock()
    pacer = Pacer("dps", 10.0, 10, clock=clock)
    pacer.throttled(retry_after=3.0)
    pacer.throttled(retry_after=3.0)  # the same burst of refusals: cut once
    figures = pacer.figures()
    assert figures.rate == 5.0 and figures.throttled == 2
    clock.now += 2.9
    assert not pacer.try_acquire()  # everyone waits out the retry-after
    clock.now += 0.2
    assert pacer.try_acquire()
    clock.now += RECOVERY
    pacer.try_acquire()
    assert pacer.figures().rate == 10.0  # back to the configured rate
    for _ in range(20):
        clock.now += 1.0
        pacer.throttled()
    assert 10.0 / 64 <= pacer.figures().rate < 1.0  # slows down a lot, but never stops altogether


def test_a_share_of_the_quota_and_back() -> None:
    clock = Clock()
    fleet = FleetPacing(PacingSettings(dps_per_minute=600, hub_connects_per_second=100), clock)
    assert fleet.dps is not None and fleet.hub is not None
    fleet.share_among(4)  # four translators on one application: a quarter each
    assert fleet.dps.configured == pytest.approx(2.5) and fleet.hub.configured == pytest.approx(25.0)
    granted = sum(fleet.hub.try_acquire() for _ in range(100))
    assert granted == 2  # the burst shrank with the share (10 → 2.5, whole tokens)
    fleet.hub.throttled()  # halved from its share, and it recovers to the share, not to the whole quota
    clock.now += RECOVERY * 2
    fleet.hub.try_acquire()
    assert fleet.hub.figures().rate == pytest.approx(25.0)
    fleet.share_among(1)  # the others left
    assert fleet.hub.configured == pytest.approx(100.0)
    clock.now += RECOVERY
    fleet.hub.try_acquire()
    assert fleet.hub.figures().rate == pytest.approx(100.0)
    with pytest.raises(ValueError, match="share"):
        fleet.hub.share(0)


async def test_waiters_are_served_in_order_at_the_rate() -> None:
    pacer = Pacer("t", 200.0, 1)
    order: list[int] = []

    async def one(n: int) -> None:
        await pacer.acquire()
        order.append(n)

    started = time.monotonic()
    async with asyncio.timeout(5):
        await asyncio.gather(*(one(n) for n in range(30)))
    elapsed = time.monotonic() - started
    assert order == list(range(30))  # first come, first served: nobody starves
    assert elapsed >= 29 / 200 * 0.9


async def test_a_cancelled_waiter_does_not_hold_up_the_others() -> None:
    pacer = Pacer("t", 20.0, 1)
    await pacer.acquire()  # the burst
    first = asyncio.create_task(pacer.acquire())
    second = asyncio.create_task(pacer.acquire())
    third = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0)
    second.cancel()
    async with asyncio.timeout(2):
        await first
        await third
    assert second.cancelled()
    assert pacer.figures().waiting == 0
    assert not pacer.try_acquire() or pacer.figures().granted == 4


async def test_try_acquire_does_not_jump_the_queue() -> None:
    pacer = Pacer("t", 10.0, 1)
    await pacer.acquire()
    waiter = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0)
    await asyncio.sleep(0.15)  # a token is there now, but the waiter came first
    assert not pacer.try_acquire() or waiter.done()
    async with asyncio.timeout(2):
        await waiter


async def test_deferred_callers_give_way_to_every_other_caller() -> None:
    # Devices IoT Central refuses until approved ask DPS again in the deferred lane: a device registering
    # for the first time, arriving later, is served before all of them (issue 19: ten thousand refused
    # devices would otherwise take the whole DPS quota from new ones).
    pacer = Pacer("dps", 50.0, 1)
    await pacer.acquire()  # the burst: everyone after this waits for tokens
    order: list[str] = []

    async def one(name: str, deferred: bool) -> None:
        await pacer.acquire(deferred=deferred)
        order.append(name)

    refused = [asyncio.create_task(one(f"refused-{n}", True)) for n in range(4)]
    await asyncio.sleep(0)
    fresh = [asyncio.create_task(one(f"new-{n}", False)) for n in range(3)]
    await asyncio.sleep(0)
    assert pacer.figures().waiting == 7
    async with asyncio.timeout(5):
        await asyncio.gather(*refused, *fresh)
    # refused-0 had the turn already (it waits for its token); then every new device, then the rest in order.
    assert order == ["refused-0", "new-0", "new-1", "new-2", "refused-1", "refused-2", "refused-3"]
    assert pacer.figures().waiting == 0


async def test_a_waiting_deferred_caller_does_not_hold_up_try_acquire_but_a_normal_one_does() -> None:
    clock = Clock()
    pacer = Pacer("t", 1.0, 1, clock=clock)
    assert pacer.try_acquire()
    deferred = asyncio.create_task(pacer.acquire(deferred=True))
    await asyncio.sleep(0)
    clock.now += 1.0  # a token is there; the deferred caller has not woken yet
    assert pacer.try_acquire()  # the first lane goes ahead of the deferred one
    normal = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0)
    clock.now += 1.0
    assert not pacer.try_acquire()  # a first-lane caller is queued: no jumping it
    deferred.cancel()
    normal.cancel()
    await asyncio.gather(deferred, normal, return_exceptions=True)
    assert pacer.figures().waiting == 0


def test_device_rate_and_fleet_pacing() -> None:
    clock = Clock()
    rate = DeviceRate(10.0, clock)
    for _ in range(10):
        assert rate.wait() == 0.0
        rate.take()
    assert rate.wait() == pytest.approx(0.1)
    fleet = FleetPacing(PacingSettings(telemetry_per_second=0, twin_updates_per_second=0), clock)
    assert fleet.telemetry is None and fleet.twin is None  # 0: not paced
    assert fleet.dps is not None and fleet.dps.configured == pytest.approx(200 / 60)
    device = fleet.for_device()
    assert sum(device.telemetry_now() for _ in range(15)) == 10


def test_reported_property_over_4_kb_is_left_out_and_the_section_kept_under_32_kb() -> None:
    kept, refused = within_limits({"small": 1, "big": "x" * 5000, "c": {"__t": "c", "huge": "y" * 5000}}, {})
    assert kept == {"small": 1}
    assert len(refused) == 2 and "big is 5002 bytes" in refused[0] and "c.huge" in refused[1]
    section = {f"p{n}": "z" * 4000 for n in range(8)} | {"$version": 9}
    kept, refused = within_limits({"p9": "z" * 4000}, section)
    assert kept == {} and "reported section would be" in refused[0]
    kept, refused = within_limits({"p1": "w" * 4000}, section)  # a replacement keeps the size
    assert kept == {"p1": "w" * 4000} and refused == []
    kept, refused = within_limits({"p1": None, "p9": "z" * 4000}, section)  # a deletion makes room
    assert refused == []
