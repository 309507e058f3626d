"""A compact, bounded deduplication cache for every request the server takes. Pure.

aiocoap keeps a full message and a timer per received request for the 247 s exchange lifetime (~2.5 KB
each, the request included); a flood of requests is then hundreds of megabytes. Here each peer keeps at
most `per_peer` recent message ids mapped to the encoded response bytes (or PENDING while the answer is
not known yet), at most `max_peers` peers are tracked and at most `max_entries` ids in all (least recently
active peers evicted first), and ids older than `lifetime` are ignored and swept.

A retransmission arrives within MAX_TRANSMIT_SPAN (45 s) and a client that sends faster than its
acknowledgements come back cannot have more than a handful of exchanges in flight (NSTART), so a few dozen
recent ids per peer cover retransmissions in practice. A request refused with a 4.xx had no effect, so it
is forgotten rather than remembered (`forget`): answering its retransmission afresh gives the same answer
(RFC 7252 §4.5 allows this for requests handled in an idempotent fashion), and floods of refused requests
leave nothing behind.
"""

from __future__ import annotations

from typing import Final

PENDING: Final = b""


class _PeerEntries:
    # Two dicts of plain values (message id → time, message id → response) instead of one of tuples: a dict
    # holding only ints, floats and bytes is not tracked by the cyclic GC, a tuple is. With tuples, tens of
    # thousands of live entries sat in the young generation and made each collection there take 50-170 ms.
    __slots__ = ("last_seen", "responses", "times")

    def __init__(self, now: float) -> None:
        self.times: dict[int, float] = {}
        self.responses: dict[int, bytes] = {}
        self.last_seen = now


class DedupCache:
    __slots__ = ("_count", "_peers", "lifetime", "max_entries", "max_peers", "per_peer")

    def __init__(
        self,
        *,
        per_peer: int = 32,
        max_peers: int = 50_000,
        max_entries: int = 200_000,
        lifetime: float = 247.0,
    ) -> None:
        self.per_peer = per_peer
        self.max_peers = max_peers
        self.max_entries = max_entries
        self.lifetime = lifetime
        self._peers: dict[object, _PeerEntries] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def peers(self) -> int:
        return len(self._peers)

    def _evict_oldest(self) -> None:
        # dicts keep insertion order and `check` re-inserts active peers: the first is the oldest
        oldest = next(iter(self._peers))
        self._count -= len(self._peers.pop(oldest).times)

    def check(self, peer: object, mid: int, now: float) -> bytes | None:
        """None for a new message (now recorded as PENDING); else the stored response (PENDING when
        the first copy is still being handled: drop the duplicate)."""
        entry = self._peers.get(peer)
        if entry is None:
            if len(self._peers) >= self.max_peers:
                self._evict_oldest()
            entry = self._peers[peer] = _PeerEntries(now)
        else:
            seen = entry.times.get(mid)
            if seen is not None and now - seen < self.lifetime:
                return entry.responses[mid]
            if now - entry.last_seen > 1.0:  # keep LRU order cheaply: re-insert at most once a second
                del self._peers[peer]
                self._peers[peer] = entry
        entry.last_seen = now
        times = entry.times
        if mid in times:
            del times[mid]
            self._count -= 1
        elif len(times) >= self.per_peer:
            oldest = next(iter(times))
            del times[oldest]
            del entry.responses[oldest]
            self._count -= 1
        times[mid] = now
        entry.responses[mid] = PENDING
        self._count += 1
        while self._count > self.max_entries and len(self._peers) > 1:
            if next(iter(self._peers)) is peer:  # never evict the peer just recorded
                del self._peers[peer]
                self._peers[peer] = entry
            self._evict_oldest()
        return None

    def store(self, peer: object, mid: int, response: bytes) -> None:
        entry = self._peers.get(peer)
        if entry is not None and mid in entry.responses:
            entry.responses[mid] = response

    def forget(self, peer: object, mid: int) -> None:
        entry = self._peers.get(peer)
        if entry is not None and entry.times.pop(mid, None) is not None:
            del entry.responses[mid]
            self._count -= 1
            if not entry.times:
                del self._peers[peer]

    def sweep(self, now: float) -> int:
        """Drop peers idle for longer than the exchange lifetime; returns how many."""
        stale = [p for p, e in self._peers.items() if now - e.last_seen > self.lifetime]
        for p in stale:
            self._count -= len(self._peers.pop(p).times)
        return len(stale)
