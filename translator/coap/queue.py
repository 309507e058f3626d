"""Queue mode as pure scheduling: when a device is reachable, and which held requests go or expire.

A queue-mode client (binding `Q`) listens only for a short window after it sent something (Register,
Update, Send, a notification). Requests for it wait here with a deadline; when it wakes, the ones still
in time are released in order, and the ones past their deadline fail. No clock: callers pass `now`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Held(Generic[T]):
    item: T
    deadline: float


@dataclass
class DownlinkQueue(Generic[T]):
    """The held requests and the awake window of one device."""

    window: float
    awake_until: float = float("-inf")
    _held: deque[Held[T]] = field(default_factory=deque)

    def __len__(self) -> int:
        return len(self._held)

    def note_activity(self, now: float) -> None:
        """The device sent something: it listens until `now + window`."""
        self.awake_until = max(self.awake_until, now + self.window)

    def sleep(self) -> None:
        """Forget the awake window (the device was found unreachable)."""
        self.awake_until = float("-inf")

    def is_awake(self, now: float) -> bool:
        return now < self.awake_until

    def hold(self, item: T, deadline: float) -> None:
        self._held.append(Held(item, deadline))

    def remove(self, item: T) -> bool:
        for held in self._held:
            if held.item is item:
                self._held.remove(held)
                return True
        return False

    def expired(self, now: float) -> list[T]:
        """Remove and return held items whose deadline has passed."""
        if not self._held:
            return []
        gone = [h.item for h in self._held if h.deadline <= now]
        if gone:
            self._held = deque(h for h in self._held if h.deadline > now)
        return gone

    def next_ready(self, now: float) -> T | None:
        """The next held item to send now (awake and in time), removed from the queue; else None."""
        if not self.is_awake(now):
            return None
        while self._held:
            held = self._held.popleft()
            if held.deadline > now:
                return held.item
            self._held.appendleft(held)  # past deadline: leave it for `expired`
            break
        return None

    def drain(self) -> list[T]:
        """Remove and return everything held (registration ended)."""
        items = [h.item for h in self._held]
        self._held.clear()
        return items

    def next_deadline(self) -> float | None:
        return min((h.deadline for h in self._held), default=None)


def must_hold(queue_mode: bool, queue: DownlinkQueue[Any], now: float) -> bool:
    """Whether a new request waits in the queue rather than going now: the device uses queue mode and
    either does not listen now, or earlier requests still wait (they go first, in order)."""
    return queue_mode and not (queue.is_awake(now) and not len(queue))


def should_flush(queue: DownlinkQueue[Any], now: float, *, flushing: bool) -> bool:
    """Whether to start releasing held requests: some wait, the device listens, none is being released."""
    return bool(len(queue)) and queue.is_awake(now) and not flushing
