"""Adaptive pacers: one per kind of request a service rations (DPS registrations, new hub connections,
device-to-cloud sends, twin updates), so that a fleet stays under the documented quotas instead of running
into them.

A pacer is a token bucket with a queue: callers are served first come, first served (no device starves
behind later ones), at most `rate` per second with `burst` saved up. Callers that ask `deferred` (a device
IoT Central refuses until an operator approves it, asking again) wait in a second lane served only while the
first is empty: ten thousand unapproved devices cannot hold up a new device's registration, and still get
the quota nobody else wants. When the service throttles anyway (a
DPS 429, a CONNACK 3, a twin 429) `throttled()` halves the rate and holds every caller for the retry-after
the service gave; the rate then climbs back to the configured one over `recovery` seconds. The numbers and
where Microsoft documents them: translator/settings.py (IotcSettings) and emulator/limits.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

PROGRESS_EVERY = 10.0  # seconds between progress lines while callers wait
RECOVERY = 30.0  # seconds to climb back from a throttled rate to the configured one
MAX_PAUSE = 300.0  # a retry-after longer than this is taken as this (every wait stays bounded)


@dataclass(frozen=True, slots=True)
class PacerFigures:
    name: str
    rate: float  # per second, now (lower than configured after a throttle)
    configured: float
    waiting: int
    granted: int
    throttled: int


class Pacer:
    def __init__(
        self,
        name: str,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        recovery: float = RECOVERY,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"pacer {name}: the rate must be positive and the burst at least 1")
        self.name = name
        self.configured = rate
        self._rate = rate
        self._burst = float(burst)
        self._full = (rate, float(burst))  # the whole quota's rate and burst, before any share of it
        self._clock = clock
        self._recovery = recovery
        self._tokens = float(burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._last_cut = -1e9
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._deferred: collections.deque[asyncio.Future[None]] = collections.deque()
        # The one caller whose turn it is (it waits for a token); `_holder_deferred`: from which lane.
        self._holder: asyncio.Future[None] | None = None
        self._holder_deferred = False
        self.granted = 0
        self.throttles = 0
        self._logged = clock()

    # -- the bucket (pure) ------------------------------------------------------------------------

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        if now < self._paused_until:
            return
        if self._rate < self.configured:
            self._rate = min(self.configured, self._rate + self.configured * elapsed / self._recovery)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)

    def _wait(self, now: float) -> float:
        """Seconds until a token is there (0: now)."""
        self._refill(now)
        if now < self._paused_until:
            return self._paused_until - now
        if self._tokens >= 1.0:
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def _take(self, now: float) -> None:
        self._tokens -= 1.0
        self.granted += 1
        if self.waiting and now - self._logged >= PROGRESS_EVERY:
            self._logged = now
            log.info(
                "pacer %s: %d granted, %d waiting, %.1f/s (configured %.1f/s)",
                self.name,
                self.granted,
                self.waiting - 1,
                self._rate,
                self.configured,
            )

    @property
    def waiting(self) -> int:
        """Callers queued in both lanes, the one whose turn it is included."""
        return len(self._queue) + len(self._deferred) + (self._holder is not None)

    def _ahead_of_first_lane(self) -> bool:
        return bool(self._queue) or (self._holder is not None and not self._holder_deferred)

    def try_acquire(self) -> bool:
        """Take a token without waiting, if one is there and nobody of the first lane is queued before us
        (deferred callers give way)."""
        now = self._clock()
        if self._ahead_of_first_lane() or self._wait(now) > 0:
            return False
        self._take(now)
        return True

    def share(self, fraction: float) -> None:
        """Keep to `fraction` of the configured quota from now on (several translators share one IoT Central
        application's quota); a rate cut by a throttle keeps recovering, to the new share."""
        if not 0 < fraction <= 1:
            raise ValueError(f"pacer {self.name}: a share must be in (0, 1], not {fraction}")
        self._refill(self._clock())
        rate, burst = self._full
        self.configured = rate * fraction
        self._rate = min(self._rate, self.configured)
        self._burst = max(1.0, burst * fraction)
        self._tokens = min(self._tokens, self._burst)

    def throttled(self, retry_after: float | None = None) -> None:
        """The service refused a request of this kind as over its rate: slow down, and pause everyone."""
        now = self._clock()
        self._refill(now)
        self.throttles += 1
        pause = min(MAX_PAUSE, retry_after if retry_after and retry_after > 0 else 1.0 / self._rate)
        self._paused_until = max(self._paused_until, now + pause)
        self._tokens = min(self._tokens, 0.0)
        # A burst of refusals is one signal, not many: cut the rate at most once a second.
        if now - self._last_cut >= 1.0:
            self._last_cut = now
            self._rate = max(self.configured / 64, self._rate / 2)
            log.warning(
                "pacer %s: throttled by the service: %.2f/s for now, paused %.1f s",
                self.name,
                self._rate,
                pause,
            )

    # -- the queue --------------------------------------------------------------------------------

    async def acquire(self, *, deferred: bool = False) -> None:
        """Wait for this caller's turn and a token; a `deferred` caller only while no other one waits.
        Cancellation leaves the queue in order."""
        if self._holder is None and not self._queue and not self._deferred and self.try_acquire():
            return
        me: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._deferred if deferred else self._queue).append(me)
        if self._holder is None:
            self._hand_turn()
        try:
            await me
            while True:
                delay = self._wait(self._clock())
                if delay <= 0:
                    break
                # Bounded: at most a pause or one token's time; the rate may change meanwhile.
                await asyncio.sleep(delay)
            self._take(self._clock())
        finally:
            self._leave(me)

    def _hand_turn(self) -> None:
        """The turn goes to the first lane's head, or else the deferred lane's."""
        self._holder = None
        while lane := self._queue or self._deferred:
            waiter = lane.popleft()
            if waiter.done():
                continue  # cancelled; its task has not run its `finally` yet
            self._holder, self._holder_deferred = waiter, lane is self._deferred
            waiter.set_result(None)
            return

    def _leave(self, me: asyncio.Future[None]) -> None:
        if me is self._holder:
            self._hand_turn()
            return
        for lane in (self._queue, self._deferred):
            with contextlib.suppress(ValueError):
                lane.remove(me)
        me.cancel()

    def estimate(self) -> float:
        """Seconds a caller arriving now would wait: the queue ahead of it, and the next token."""
        ahead = len(self._queue) + (self._holder is not None and not self._holder_deferred)
        return self._wait(self._clock()) + ahead / self._rate

    def figures(self) -> PacerFigures:
        return PacerFigures(
            self.name, self._rate, self.configured, self.waiting, self.granted, self.throttles
        )


class DeviceRate:
    """One device's own send rate (IoT Central lets a device send up to 10 messages/s for a while): a plain
    bucket whose tokens are reserved ahead, so that concurrent sends of one device queue up in order."""

    __slots__ = ("_burst", "_clock", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = max(1.0, rate)
        self._clock = clock
        self._tokens = self._burst
        self._updated = clock()

    def wait(self) -> float:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self._rate

    def take(self) -> None:
        self._tokens -= 1.0

    def reserve(self) -> float:
        """Take a token now, borrowing ahead if need be: the seconds until it is due."""
        delay = self.wait()
        self._tokens -= 1.0
        return delay

    def refund(self) -> None:
        """A reserved token not used after all (its send gave up waiting)."""
        self._tokens += 1.0


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """Rates a fleet keeps to; 0 turns that pacer off. Defaults: the quotas of an IoT Central application
    on an S1 hub (sources in translator/settings.py)."""

    dps_per_minute: float = 200.0
    hub_connects_per_second: float = 100.0
    hub_connect_burst: float = 10.0
    telemetry_per_second: float = 100.0
    device_telemetry_per_second: float = 10.0
    twin_updates_per_second: float = 100.0


def _pacer(name: str, rate: float, burst: float, clock: Callable[[], float]) -> Pacer | None:
    return Pacer(name, rate, max(1.0, burst), clock=clock) if rate > 0 else None


class FleetPacing:
    """The pacers every session of a pool shares."""

    def __init__(self, settings: PacingSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        # Bursts stay under what the service saves up (a minute's or a second's quota): a tenth of it, so
        # network jitter never makes a paced fleet look like a burst over the quota.
        self.dps = _pacer("dps", settings.dps_per_minute / 60.0, settings.dps_per_minute / 10.0, clock)
        self.hub = _pacer("hub-connect", settings.hub_connects_per_second, settings.hub_connect_burst, clock)
        self.telemetry = _pacer(
            "telemetry", settings.telemetry_per_second, settings.telemetry_per_second / 10.0, clock
        )
        self.twin = _pacer(
            "twin", settings.twin_updates_per_second, settings.twin_updates_per_second / 10, clock
        )

    def pacers(self) -> list[Pacer]:
        return [pacer for pacer in (self.dps, self.hub, self.telemetry, self.twin) if pacer is not None]

    def share_among(self, nodes: int) -> None:
        """The application's quotas split evenly among `nodes` translators (each device's own rate stays
        whole: a device is served by one node at a time)."""
        for pacer in self.pacers():
            pacer.share(1.0 / max(1, nodes))

    def for_device(self) -> DevicePacing:
        rate = self.settings.device_telemetry_per_second
        return DevicePacing(self, DeviceRate(rate, self._clock) if rate > 0 else None)

    async def registration(self) -> None:
        if self.dps is not None:
            await self.dps.acquire()

    async def registration_deferred(self) -> None:
        """A device IoT Central refused until approved asks again: after every other registration."""
        if self.dps is not None:
            await self.dps.acquire(deferred=True)

    def registration_throttled(self, retry_after: float | None) -> None:
        if self.dps is not None:
            self.dps.throttled(retry_after)


class DevicePacing:
    """What one session asks before it connects, sends telemetry or updates its twin."""

    __slots__ = ("_device", "_fleet")

    def __init__(self, fleet: FleetPacing | None = None, device: DeviceRate | None = None) -> None:
        self._fleet = fleet
        self._device = device

    async def connect(self) -> None:
        if self._fleet is not None and self._fleet.hub is not None:
            await self._fleet.hub.acquire()

    def connect_refused(self, return_code: int) -> None:
        """CONNACK 3 (server unavailable) is how IoT Hub throttles new connections."""
        if return_code == 3 and self._fleet is not None and self._fleet.hub is not None:
            self._fleet.hub.throttled()

    def telemetry_now(self) -> bool:
        """Whether a message may go this instant (the direct path), taking the tokens if so."""
        device = self._device
        if device is not None and device.wait() > 0:
            return False
        shared = self._fleet.telemetry if self._fleet is not None else None
        if shared is not None and not shared.try_acquire():
            return False
        if device is not None:
            device.take()
        return True

    async def telemetry(self) -> None:
        device = self._device
        if device is not None:
            delay = device.reserve()
            if delay > 0:
                try:
                    await asyncio.sleep(delay)  # bounded: this device's own backlog at its own rate
                except asyncio.CancelledError:
                    device.refund()
                    raise
        if self._fleet is not None and self._fleet.telemetry is not None:
            await self._fleet.telemetry.acquire()

    def telemetry_wait(self) -> float:
        """Seconds a message sent now would wait for its turn (0: it may go at once)."""
        wait = self._device.wait() if self._device is not None else 0.0
        if self._fleet is not None and self._fleet.telemetry is not None:
            wait = max(wait, self._fleet.telemetry.estimate())
        return wait

    async def twin_update(self) -> None:
        if self._fleet is not None and self._fleet.twin is not None:
            await self._fleet.twin.acquire()

    def twin_throttled(self, retry_after: float | None) -> None:
        if self._fleet is not None and self._fleet.twin is not None:
            self._fleet.twin.throttled(retry_after)


UNPACED = DevicePacing()
