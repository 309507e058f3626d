"""One periodic sweep bounds every device's direct publish, instead of a timer per message.

A direct publish (`delivery.TelemetryDelivery`, published from the datagram handler without a coroutine)
has no time limit of its own; the sweep hands one whose deadline passed back to its device's delivery,
which keeps it in the outbox. A publish waits at most `period` longer than its deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from translator.ops.logs import device_log

log = logging.getLogger(__name__)

DIRECT_SWEEP_PERIOD = 0.5  # seconds


class Expiring(Protocol):
    device_id: str

    def expire_direct(self, now: float) -> None: ...


class DirectSweep:
    def __init__(self, clock: Callable[[], float], period: float = DIRECT_SWEEP_PERIOD) -> None:
        self._clock = clock
        self._period = period
        self._deadlines: dict[Expiring, float] = {}  # a direct publish in flight → its deadline
        self._task: asyncio.Task[None] | None = None

    def watch(self, delivery: Expiring, deadline: float) -> None:
        self._deadlines[delivery] = deadline
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sweep(), name="direct-sweep")

    def unwatch(self, delivery: Expiring) -> None:
        self._deadlines.pop(delivery, None)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            now = self._clock()
            for delivery, deadline in list(self._deadlines.items()):
                if deadline <= now:
                    try:
                        delivery.expire_direct(now)
                    except Exception:  # the sweep bounds every device's publishes: it must outlive one
                        device_log(log, delivery.device_id).exception("handing a late publish on failed")
                        self._deadlines.pop(delivery, None)
