"""A small memo with a cap and an age: what a cache keyed by device input may hold. Pure."""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    """At most `max_entries` values, each kept at most `lifetime` seconds after it was put.

    Oldest first out: a flood of new keys evicts old ones instead of growing the memo.
    """

    __slots__ = ("_items", "lifetime", "max_entries")

    def __init__(self, *, max_entries: int, lifetime: float) -> None:
        self.max_entries = max_entries
        self.lifetime = lifetime
        self._items: dict[K, tuple[float, V]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K, now: float) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if now - item[0] >= self.lifetime:
            del self._items[key]
            return None
        return item[1]

    def put(self, key: K, value: V, now: float) -> None:
        self._items.pop(key, None)
        while len(self._items) >= self.max_entries:
            del self._items[next(iter(self._items))]
        self._items[key] = (now, value)

    def sweep(self, now: float) -> int:
        """Drop expired values (they are in insertion order, so only the head is looked at)."""
        dropped = 0
        while self._items:
            key, (put_at, _) = next(iter(self._items.items()))
            if now - put_at < self.lifetime:
                break
            del self._items[key]
            dropped += 1
        return dropped
