"""The relay's decisions, pure: which datagrams a node hands to another node, and how they are written.

A device's datagrams may reach a node that does not own it (a balancer moved its flow). Such a node — the
*seen-at* node — does not take the device on a Send or a notification: it forwards the datagram, whole, to
the owner, which handles it as if its own socket had read it (its dedup, its sink, its honest answer), and
whatever the owner sends to that address (the answer, an ACK, a downlink) goes back through the seen-at
node's socket — the path the balancer keeps open. Only a Register or an Update claims (ownership.py), so a
device whose packets alternate between two nodes never moves its hub session: hysteresis by message kind.

Nothing here does I/O; redis_relay.py runs it on Redis Streams.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Peer = tuple[Any, ...]  # a socket address as the node's udp6 socket gives it


class Inbound(enum.Enum):
    """What a datagram is, as far as relaying goes."""

    REGISTRATION = "registration"  # a request to /rd: a Register, an Update, a De-register
    SEND = "send"  # a request to /dp (an LwM2M Send)
    RESPONSE = "response"  # a response or an empty ACK/RST (a notification, an answer to a downlink)
    OTHER = "other"  # any other request: this node's own business


class Route(enum.Enum):
    LOCAL = "local"  # handle it here
    RELAY = "relay"  # forward it to the owner
    LOOKUP = "lookup"  # ask the shared store whose address this is, then decide again


def classify(code: int, first_segment: str | None) -> Inbound:
    """The kind of a datagram from its code byte and the first Uri-Path segment of a request."""
    if code == 0 or code >= 64:
        return Inbound.RESPONSE
    if first_segment == "rd":
        return Inbound.REGISTRATION
    if first_segment == "dp":
        return Inbound.SEND
    return Inbound.OTHER


def route_inbound(kind: Inbound, *, known_here: bool, foreign: bool | None) -> Route:
    """Where a datagram from an address goes.

    `known_here`: this node has the address's registration (a Send) or the response's token or exchange.
    `foreign`: the address belongs to a device another live node owns (None: not known yet).
    """
    if kind is Inbound.REGISTRATION or kind is Inbound.OTHER:
        # A Register/Update is the device telling where it is: it is handled (and claims) where it lands.
        return Route.LOCAL
    if known_here:
        return Route.LOCAL
    if foreign is None:
        return Route.LOOKUP
    return Route.RELAY if foreign else Route.LOCAL


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    """The relay's bounds.

    `block`: how long one XREAD waits (bounded, so a stop or a lost connection is noticed within it);
    `stream_length`: entries kept per node stream (approximate trim: a node away longer loses the oldest,
    which CoAP retransmits anyway); `queue`: datagrams waiting to be written before the newest are dropped
    (a datagram, not a promise); `memo_lifetime`: how long an address's owner is believed before it is read
    again, `unknown_lifetime` how long an address nobody else owns is (short: the device may register
    elsewhere any moment); `memo_entries`: addresses remembered; `route_entries`: addresses an owner sends
    to through another node (least recently relayed evicted first); `stream_idle`: a node stream nobody
    wrote to for this long expires (a dead node's); `reconnect_min`/`reconnect_max`: the backoff of a loop
    that lost Redis."""

    block: float = 0.5
    stream_length: int = 10_000
    queue: int = 10_000
    batch: int = 256
    memo_lifetime: float = 30.0
    unknown_lifetime: float = 2.0
    memo_entries: int = 100_000
    route_entries: int = 100_000
    reconnect_min: float = 0.05
    reconnect_max: float = 2.0
    stream_idle: float = 60.0

    def __post_init__(self) -> None:
        if self.block <= 0 or self.stream_length < 1 or self.queue < 1 or self.batch < 1:
            raise ValueError("the relay needs a positive block, stream length, queue and batch")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise ValueError("the relay's reconnect backoff needs 0 < min <= max")

    @property
    def block_ms(self) -> int:
        return max(1, round(self.block * 1000))

    @property
    def stream_idle_ms(self) -> int:
        return max(1, round(self.stream_idle * 1000))

    def reconnect_delay(self, failures: int) -> float:
        """The wait before the `failures`-th retry in a row (1-based): doubling from min up to max."""
        return min(self.reconnect_max, self.reconnect_min * 2.0 ** min(max(failures - 1, 0), 32))


def seen_ttl(lifetime: int) -> int:
    """Seconds the seen-at record of a registration lives: past the registration's own end (an Update
    renews both), at least an hour, and a day for a registration whose lifetime is unbounded (0)."""
    return max(3600, 2 * lifetime) if lifetime > 0 else 86_400


# -- the wire of the relay streams ----------------------------------------------------------------


class Direction(enum.Enum):
    TO_OWNER = b"i"  # a datagram from the device, for its owner to handle
    TO_DEVICE = b"o"  # a datagram from the owner, for the seen-at node to send to the device


@dataclass(frozen=True, slots=True)
class Relayed:
    direction: Direction
    sender: str  # the node that wrote the entry
    peer: Peer
    data: bytes


def peer_text(peer: Peer) -> str:
    """The address as text (the key of the seen-at index, and the entry's field)."""
    return json.dumps(list(peer), separators=(",", ":"))


def peer_of(text: str | bytes) -> Peer:
    value = json.loads(text)
    if not isinstance(value, list) or len(value) < 2:
        raise ValueError(f"not an address: {text!r}")
    return tuple(value)


def encode_entry(entry: Relayed) -> dict[bytes, bytes]:
    return {
        b"k": entry.direction.value,
        b"n": entry.sender.encode(),
        b"p": peer_text(entry.peer).encode(),
        b"d": entry.data,
    }


def decode_entry(fields: Mapping[bytes, bytes]) -> Relayed | None:
    """The entry, or None when it is not one this version writes (skipped, never fatal)."""
    try:
        return Relayed(
            Direction(fields[b"k"]), fields[b"n"].decode(), peer_of(fields[b"p"]), bytes(fields[b"d"])
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


# -- what a node remembers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Foreign:
    """An address's device and the node that owns it; `owner` None: the address is this node's business
    (unknown anywhere, or its owner is this node or a dead one)."""

    device: str | None
    owner: str | None


class AddressBook:
    """Addresses of devices owned elsewhere, as a seen-at node last learned them (bounded, expiring): the
    datagram path asks it without I/O, and only an address it does not know costs a read of the store."""

    def __init__(self, policy: RelayPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._entries: dict[Peer, tuple[float, Foreign]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, peer: Peer) -> Foreign | None:
        """What is known of the address, or None when it must be looked up."""
        entry = self._entries.get(peer)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[peer]
            return None
        return entry[1]

    def put(self, peer: Peer, foreign: Foreign) -> None:
        if peer not in self._entries and len(self._entries) >= self._policy.memo_entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest written: dicts keep order
        self._entries.pop(peer, None)
        policy = self._policy
        lifetime = policy.memo_lifetime if foreign.owner is not None else policy.unknown_lifetime
        self._entries[peer] = (self._clock() + lifetime, foreign)

    def forget(self, peer: Peer) -> None:
        self._entries.pop(peer, None)


class Routes:
    """At the owner: the addresses whose datagrams last came through another node, and which node. What the
    owner sends to such an address goes back that way; a datagram read from its own socket ends the route.

    Bounded: past `limit` addresses the one whose datagrams came through a relay least recently goes (a
    device that moved on, or whose flow came back to this node without a datagram here yet). Its downlinks
    leave from this node's socket again until its next relayed datagram brings the route back; a device
    heard through the relay lately is kept."""

    def __init__(self, limit: int = 100_000) -> None:
        if limit < 1:
            raise ValueError("routes need room for one address at least")
        self._via: dict[Peer, str] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._via)

    def via(self, peer: Peer) -> str | None:
        return self._via.get(peer) if self._via else None

    def learned(self, peer: Peer, node: str) -> None:
        # Re-inserted at the end: dicts keep insertion order, so the first key is the least recently used.
        via = self._via
        via.pop(peer, None)
        if len(via) >= self._limit:
            via.pop(next(iter(via)))
        via[peer] = node

    def heard_directly(self, peer: Peer) -> None:
        if self._via:
            self._via.pop(peer, None)
