"""Log lines a flood cannot multiply: at most one record per kind per interval, then a count.

A bad datagram must cost at most one short log line, and a flood of them one line per interval rather
than one per datagram. `LogBudget` is the pure decision; `RateLimitFilter` applies it to a logger whose
records we do not write ourselves (aiocoap's, which logs one line per unparsable or unexpected message).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable


class LogBudget:
    """One record per key per `interval` seconds; remembers how many were held back meanwhile."""

    __slots__ = ("_clock", "_last", "_suppressed", "interval", "max_keys")

    def __init__(
        self, interval: float = 10.0, *, max_keys: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._suppressed: dict[Hashable, int] = {}

    def allow(self, key: Hashable) -> int | None:
        """None to drop this record; else how many of its kind were dropped since the last one."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        if last is None and len(self._last) >= self.max_keys:
            self._last.clear()  # keys are message templates: only a bug makes this many
            self._suppressed.clear()
        self._last[key] = now
        return self._suppressed.pop(key, 0)


class RateLimitFilter(logging.Filter):
    """A logging filter: per message template, one record per interval, with the count held back added
    to the next one that passes. Below ERROR the traceback is dropped: one line per record."""

    def __init__(self, budget: LogBudget) -> None:
        super().__init__()
        self._budget = budget

    def filter(self, record: logging.LogRecord) -> bool:
        held = self._budget.allow((record.name, record.levelno, str(record.msg)))
        if held is None:
            return False
        if record.levelno < logging.ERROR:
            record.exc_info = None
            record.exc_text = None
        if held:
            record.msg = f"{record.msg} ({held} similar in the last {self._budget.interval:g} s not logged)"
        return True
