"""The set-up limiter: a cap on devices being set up at once and a rate of set-ups started. Pure asyncio;
the clock and the sleeps are the test's, so the pacing is checked exactly, not timed."""

from __future__ import annotations

import asyncio

import pytest

from translator.bridge.pacing import SetupLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)  # time stands still: every delay is counted from the same instant
        await asyncio.sleep(0)


async def test_set_ups_start_at_the_rate_after_a_burst_of_one_second() -> None:
    fake = FakeTime()
    limiter = SetupLimiter(concurrency=1000, rate=10.0, clock=fake.clock, sleep=fake.sleep)
    starts: list[float] = []

    async def set_up() -> None:
        async with limiter.slot():
            starts.append(fake.now)

    await asyncio.gather(*(set_up() for _ in range(30)))
    assert len(starts) == 30
    # 10 at once (a second's worth), then one every 0.1 s: 30 devices take 2 s, never a burst of 30.
    assert sorted(fake.slept) == pytest.approx([0.1 * n for n in range(1, 21)])


async def test_no_more_than_concurrency_devices_are_set_up_at_once() -> None:
    limiter = SetupLimiter(concurrency=3, rate=1e6)
    release = asyncio.Event()
    peak = 0

    async def set_up() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.active)
            await release.wait()

    tasks = [asyncio.create_task(set_up()) for _ in range(10)]
    async with asyncio.timeout(5):
        while limiter.waiting != 7:
            await asyncio.sleep(0)
    assert limiter.active == 3
    release.set()
    async with asyncio.timeout(5):
        await asyncio.gather(*tasks)
    assert peak == 3 and limiter.active == 0 and limiter.started == 10


async def test_a_failed_or_cancelled_set_up_gives_its_slot_back() -> None:
    limiter = SetupLimiter(concurrency=1, rate=1e6)
    with pytest.raises(RuntimeError):
        async with limiter.slot():
            raise RuntimeError("device gone")
    blocked = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot():
            blocked.set()
            await asyncio.Event().wait()

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(blocked.wait(), 5)
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    async with asyncio.timeout(5), limiter.slot():
        assert limiter.active == 1


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        SetupLimiter(concurrency=0, rate=1.0)
    with pytest.raises(ValueError):
        SetupLimiter(concurrency=1, rate=0.0)
