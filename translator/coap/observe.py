"""Observation notification ordering (RFC 7641 §3.4). Pure.

A notification is fresh when its 24-bit sequence number is newer than the last one seen (serial number
arithmetic), or when more than 128 s passed since that one (the sender may have restarted its counter).
Stale notifications are dropped: their values are older than what was already delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQ_MODULO = 1 << 24
_HALF = 1 << 23
REORDER_WINDOW = 128.0


def is_newer(v1: int, t1: float, v2: int, t2: float) -> bool:
    """True when (v2 at t2) is newer than (v1 at t1), per RFC 7641 §3.4."""
    return (v1 < v2 and v2 - v1 < _HALF) or (v1 > v2 and v1 - v2 > _HALF) or t2 > t1 + REORDER_WINDOW


@dataclass(slots=True)
class ObservationSequence:
    """The freshness state of one observation."""

    last_seq: int | None = None
    last_time: float = 0.0
    accepted: int = 0
    dropped: int = 0

    def accept(self, seq: int | None, now: float) -> bool:
        """Record a notification; False when it is stale (drop it). A notification without a
        sequence number (the final response of an observation) is always accepted."""
        if seq is None:
            self.accepted += 1
            return True
        if self.last_seq is not None and not is_newer(self.last_seq, self.last_time, seq, now):
            self.dropped += 1
            return False
        self.last_seq = seq
        self.last_time = now
        self.accepted += 1
        return True
