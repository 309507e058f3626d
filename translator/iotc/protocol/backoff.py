"""Exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads reconnects of many
sessions that lost their hub at the same instant, which is exactly what happens when the hub or
the network blips with 10k sessions open. The random source and the clock are injected, so tests
are deterministic and nothing here is global.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

RandomSource = Callable[[], float]
"""Returns a float in [0, 1), like `random.Random().random`."""

Clock = Callable[[], float]
"""Returns monotonic seconds, like `time.monotonic`."""


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Shape of the backoff: delay ceiling = min(cap, base * multiplier ** attempt)."""

    base: float = 1.0
    cap: float = 60.0
    multiplier: float = 2.0
    # A connection that stayed up this long counts as healthy: the next failure starts afresh. Short, so a
    # blip after a good stretch does not inherit the wait of an earlier outage (issue 12: 56 s right after
    # 23 s connected); a connection the hub proved good (a PUBACK, see Backoff.proven) counts at once.
    stable_after: float = 10.0

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.cap >= self.base and self.multiplier >= 1):
            raise ValueError("backoff needs base > 0, cap >= base and multiplier >= 1")
        if self.stable_after < 0:
            raise ValueError("stable_after must not be negative")

    def ceiling(self, attempt: int) -> float:
        """The largest delay the given (0-based) attempt may draw."""
        # Bound the exponent first: multiplier ** 10_000 overflows a float.
        limit = math.log(self.cap / self.base, self.multiplier) if self.multiplier > 1 else 0.0
        if attempt >= limit:
            return self.cap
        return min(self.cap, self.base * self.multiplier**attempt)


class Backoff:
    """Per-session backoff state (one per device session, never shared)."""

    __slots__ = ("_attempt", "_clock", "_connected_at", "_random", "policy")

    def __init__(self, policy: BackoffPolicy, random: RandomSource, clock: Clock) -> None:
        self.policy = policy
        self._random = random
        self._clock = clock
        self._attempt = 0
        self._connected_at: float | None = None

    @property
    def attempt(self) -> int:
        """How many delays were drawn since the last reset."""
        return self._attempt

    def next_delay(self, at_least: float = 0.0) -> float:
        """Draw the delay before the next attempt, and count the attempt.

        `at_least` honours a server's retry-after: the draw never goes below it.
        """
        if self._connected_at is not None:
            if self._clock() - self._connected_at >= self.policy.stable_after:
                self._attempt = 0
            self._connected_at = None
        ceiling = self.policy.ceiling(self._attempt)
        self._attempt += 1
        draw = self._random()
        if not 0.0 <= draw < 1.0:
            raise ValueError(f"random source returned {draw!r}, outside [0, 1)")
        return max(at_least, draw * ceiling)

    def connected(self) -> None:
        """Note a successful connection; if it lasts `stable_after`, the next failure starts afresh."""
        self._connected_at = self._clock()

    def proven(self) -> None:
        """The hub acknowledged something on this connection: it works, so the next failure starts afresh.
        Called per PUBACK: one comparison when there is nothing to reset. Microsoft's device SDKs default to
        exponential back-off with jitter, "aggressive at the start" and slower over time
        (https://learn.microsoft.com/azure/iot-hub/iot-hub-reliability-features-in-sdks, "Retry patterns"):
        after proven success, a new fault is a new start, not the continuation of an old one."""
        if self._attempt:
            self._attempt = 0

    def reset(self) -> None:
        """Start over at attempt 0 (after an explicit success, or a deliberate reconnect)."""
        self._attempt = 0
        self._connected_at = None
