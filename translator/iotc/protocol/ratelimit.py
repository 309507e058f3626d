"""A token bucket, sans I/O: how long to wait before the next connection attempt may start."""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. `reserve()` takes one and says how long to wait."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def reserve(self) -> float:
        """Take a token (possibly borrowing against the future); return seconds until it is usable."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
