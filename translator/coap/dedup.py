"""A compact, bounded deduplication cache for hot-path requests. Pure.

aiocoap keeps a full message and a timer per received request for the 247 s exchange lifetime (~3 KB
each); at thousands of requests per second that is gigabytes. Here each peer keeps at most
`per_peer` recent message ids mapped to the encoded response bytes (or PENDING while the sink has not
confirmed yet), and at most `max_peers` peers are tracked (least recently active evicted first).

A retransmission arrives within MAX_TRANSMIT_SPAN (45 s) and a client that sends faster than its
acknowledgements come back cannot have more than a handful of exchanges in flight (NSTART), so a few dozen
recent ids per peer cover retransmissions in practice; ids older than `lifetime` are ignored.
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
    __slots__ = ("_peers", "lifetime", "max_peers", "per_peer")

    def __init__(self, *, per_peer: int = 32, max_peers: int = 50_000, lifetime: float = 247.0) -> None:
        self.per_peer = per_peer
        self.max_peers = max_peers
        self.lifetime = lifetime
        self._peers: dict[object, _PeerEntries] = {}

    def __len__(self) -> int:
        return sum(len(p.times) for p in self._peers.values())

    @property
    def peers(self) -> int:
        return len(self._peers)

    def check(self, peer: object, mid: int, now: float) -> bytes | None:
        """None for a new message (now recorded as PENDING); else the stored response (PENDING when
        the first copy is still being handled: drop the duplicate)."""
        entry = self._peers.get(peer)
        if entry is None:
            if len(self._peers) >= self.max_peers:
                # dicts keep insertion order and `check` re-inserts active peers: the first is the oldest
                del self._peers[next(iter(self._peers))]
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
        elif len(times) >= self.per_peer:
            oldest = next(iter(times))
            del times[oldest]
            del entry.responses[oldest]
        times[mid] = now
        entry.responses[mid] = PENDING
        return None

    def store(self, peer: object, mid: int, response: bytes) -> None:
        entry = self._peers.get(peer)
        if entry is not None and mid in entry.responses:
            entry.responses[mid] = response

    def forget(self, peer: object, mid: int) -> None:
        entry = self._peers.get(peer)
        if entry is not None and entry.times.pop(mid, None) is not None:
            del entry.responses[mid]

    def sweep(self, now: float) -> int:
        """Drop peers idle for longer than the exchange lifetime; returns how many."""
        stale = [p for p, e in self._peers.items() if now - e.last_seen > self.lifetime]
        for p in stale:
            del self._peers[p]
        return len(stale)
