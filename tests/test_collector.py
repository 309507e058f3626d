"""The GC settle policy (pure) and one real settle."""

from __future__ import annotations

import gc

from translator.ops.collector import Settle, SettlePolicy, settle


def test_a_wave_settles_once_it_has_been_quiet() -> None:
    policy = SettlePolicy(min_wave=50, quiet=2.0)
    assert policy.due(10, 10, now=0.0) is None  # too few to be worth a pause
    assert policy.due(400, 400, now=1.0) is None  # still arriving
    assert policy.due(900, 900, now=2.0) is None
    assert policy.due(900, 900, now=3.0) is None  # quiet for 1 s only
    assert policy.due(900, 900, now=4.0) is Settle.YOUNG
    policy.settled(Settle.YOUNG, 900, 900)
    assert policy.due(900, 900, now=10.0) is None  # nothing new since


def test_a_trickle_that_is_never_quiet_still_settles() -> None:
    policy = SettlePolicy(min_wave=50, quiet=2.0, growth=0.25, trickle=1000)
    policy.settled(Settle.YOUNG, 8000, 8000)
    now = 0.0
    total = 8000
    while policy.due(total, total, now) is None:
        now += 1.0
        total += 10
        assert now < 1000, "never settled"
    assert total - 8000 >= 2000  # a quarter of the live registrations


def test_departures_make_the_next_settle_full() -> None:
    policy = SettlePolicy(min_wave=50, quiet=1.0, growth=0.25)
    assert policy.due(800, 800, now=0.0) is None
    assert policy.due(800, 800, now=1.0) is Settle.YOUNG
    policy.settled(Settle.YOUNG, 800, 800)
    # 300 devices re-register (their old registrations' objects are garbage now, maybe frozen).
    assert policy.due(1100, 800, now=2.0) is None
    assert policy.due(1100, 800, now=3.0) is Settle.FULL
    policy.settled(Settle.FULL, 1100, 800)
    assert policy.due(1160, 860, now=4.0) is None
    assert policy.due(1160, 860, now=5.0) is Settle.YOUNG  # departures were counted at the full settle


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settle_freezes_survivors_and_a_full_settle_frees_frozen_garbage() -> None:
    try:
        survivor = [_Cycle() for _ in range(100)]
        settle(Settle.YOUNG)
        frozen = gc.get_freeze_count()
        assert frozen >= 100
        del survivor  # cyclic garbage, but frozen: only a full settle can free it
        settle(Settle.FULL)
        assert gc.get_freeze_count() < frozen - 90
    finally:
        gc.unfreeze()


async def test_heap_trim_runs_off_the_loop_until_cancelled() -> None:
    import asyncio
    import threading

    from translator.ops.heap import libc_trim, trim_periodically

    calls: list[str] = []
    loop = asyncio.get_running_loop()
    twice = asyncio.Event()

    def trim() -> int:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            loop.call_soon_threadsafe(twice.set)
        return 1

    task = asyncio.create_task(trim_periodically(trim, interval=0.01))
    async with asyncio.timeout(5.0):
        await twice.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert threading.main_thread().name not in calls
    real = libc_trim()
    assert real is None or real() in (0, 1)
    await trim_periodically(None)  # no glibc: returns at once
