"""One limiter for setting devices up: at most `concurrency` devices being set up at once, started at
most `rate` per second.

Set-up is what a device costs before it runs on its own: its session, its static-property Reads, its
Write-Attributes and Observes. A restart with 10k registrations, or a registration flood, would otherwise
put all of them on the wire at once. Each device's set-up downlinks go one after the other, so the cap
on devices is also a cap on set-up downlinks in flight.

The default rate (coap.setup_rate = 100/s) matches the pool's connect rate: IoT Hub admits new device
connections at 100/s for a small hub (S1: 100/s or 12/s/unit, whichever is more), and a set-up starts
with a session — https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from translator.iotc.protocol.ratelimit import TokenBucket


class SetupLimiter:
    def __init__(
        self,
        concurrency: int,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if concurrency < 1 or rate <= 0:
            raise ValueError("set-up concurrency must be at least 1 and its rate positive")
        self._slots = asyncio.Semaphore(concurrency)
        # A burst of one second's worth at most, never more than may run at once anyway.
        self._bucket = TokenBucket(rate, max(1, min(concurrency, int(rate))), clock)
        self._sleep = sleep
        self.active = 0
        self.waiting = 0
        self.started = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            delay = self._bucket.reserve()
            if delay:
                await self._sleep(delay)
            self.active += 1
            self.started += 1
            try:
                yield
            finally:
                self.active -= 1
        finally:
            self._slots.release()
