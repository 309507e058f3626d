"""The cyclic garbage collector for a long-running server: start-up tuning (`tune_gc`), and when to
collect deliberately and freeze what survives (after registration waves).

Each registered device leaves ~130 long-lived, GC-tracked objects (session, tasks, TLS buffers, codec
state). Left to CPython's thresholds they are walked by a young collection some time after a registration
wave (170 ms with 1000 devices, in the middle of the load) and again by every full collection (seconds at
10k devices). So once a wave of registrations has settled, one deliberate collection runs and `gc.freeze()`
moves the survivors out of the collector's reach: the pause happens once, at a quiet moment.

A frozen object is never collected: when it later becomes cyclic garbage (its device left) it stays. So
once departures since the last full settle reach a quarter of the live registrations, the settle unfreezes
first and collects the whole heap.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Settle(enum.Enum):
    YOUNG = "young"  # collect what is not frozen yet, freeze the survivors
    FULL = "full"  # unfreeze, collect everything, freeze the survivors


class SettlePolicy:
    """Pure: told the registration counts once per tick, says when (and how) to settle.

    Settle after at least `min_wave` new registrations and then `quiet` seconds without one, or, under a
    steady trickle that is never quiet, once the new ones reach max(`trickle`, `growth` × live)."""

    def __init__(
        self, *, min_wave: int = 50, quiet: float = 2.0, growth: float = 0.25, trickle: int = 1000
    ) -> None:
        self.min_wave = min_wave
        self.quiet = quiet
        self.growth = growth
        self.trickle = trickle
        self._settled_total = 0
        self._ended_at_full = 0
        self._last_total = 0
        self._last_change = float("-inf")

    def due(self, total: int, live: int, now: float) -> Settle | None:
        """`total`: registrations since start (re-registrations included); `live`: registered now."""
        if total != self._last_total:
            self._last_total = total
            self._last_change = now
        pending = total - self._settled_total
        if pending < self.min_wave:
            return None
        quiet = now - self._last_change >= self.quiet
        if not quiet and pending < max(self.trickle, self.growth * live):
            return None
        ended = total - live - self._ended_at_full
        return Settle.FULL if ended >= max(self.min_wave, self.growth * live) else Settle.YOUNG

    def settled(self, kind: Settle, total: int, live: int) -> None:
        self._settled_total = total
        if kind is Settle.FULL:
            self._ended_at_full = total - live


def tune_gc(threshold0: int = 50_000, threshold1: int = 20, threshold2: int = 100) -> None:
    """At start-up, once: freeze what exists (it lives as long as the server) and make young collections
    rarer. Python's default thresholds (700 allocations) run the collector thousands of times per second
    under load; the hot path creates almost no reference cycles, so garbage is still freed by reference
    counting and memory stays flat."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold0, threshold1, threshold2)


def settle(kind: Settle) -> float:
    """Collect (everything, for FULL), then freeze the survivors; returns the pause in seconds."""
    started = time.perf_counter()
    if kind is Settle.FULL:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started


async def settle_after_waves(
    counts: Callable[[], tuple[int, int]], policy: SettlePolicy, *, tick: float = 1.0
) -> None:
    """Run until cancelled; `counts()` gives (registrations since start, registrations live)."""
    while True:
        await asyncio.sleep(tick)
        total, live = counts()
        kind = policy.due(total, live, time.monotonic())
        if kind is None:
            continue
        pause = settle(kind)
        policy.settled(kind, total, live)
        log.info(
            "registrations settled (%d live): %s collection paused %.0f ms, %d objects frozen",
            live,
            kind.value,
            pause * 1000,
            gc.get_freeze_count(),
        )
