"""Device ownership as pure decisions: which node holds a device's hub session, and when another may take it.

A device has at most one owner node and an epoch, a number that grows by one at every change of owner. A
node changes the owner only by a claim that names the epoch it saw (compare-and-set): of two nodes claiming
at once, one wins and the other sees the new epoch. A node acts for a device (replays its outbox, runs its
commands, writes its registration) only while the stored owner is still the node and epoch it claimed: the
fence. A node that lost a device learns it at its next fenced action and lets the device go.

Claims happen when a Register/Update (or a DTLS handshake) for the device reaches this node — its datagrams
come here now — or when the owner's heartbeat is gone (the owner died: someone must replay its outbox).
Nothing here does I/O; redis_ownership.py runs these decisions against Redis.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from translator.store.base import RegistrationRecord


@dataclass(frozen=True, slots=True)
class Owner:
    node: str
    epoch: int


class Trigger(enum.Enum):
    REGISTRATION = "registration"  # a Register, an Update or a handshake arrived here
    ORPHANED = "orphaned"  # the owner's heartbeat is gone


class Verdict(enum.Enum):
    KEEP = "keep"  # already ours: nothing to write (an Update every lifetime costs no claim)
    CLAIM = "claim"  # take it: compare-and-set from the epoch seen
    LEAVE = "leave"  # a live node owns it and nothing here says it moved


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    expected_epoch: int = 0  # the epoch the claim compares with (0: nobody ever owned it)


class DeviceClaims(Protocol):
    """What the bridge asks of ownership (RedisOwnership implements it)."""

    async def claim(self, device_id: str, trigger: Trigger) -> Owner | None: ...

    async def still_mine(self, device_id: str) -> bool: ...

    async def owner(self, device_id: str) -> Owner | None: ...

    async def write_registrations(
        self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]
    ) -> int: ...


def decide(me: str, current: Owner | None, trigger: Trigger, *, owner_alive: bool) -> Decision:
    """What node `me` does about a device whose stored owner is `current`."""
    if current is None:
        return Decision(Verdict.CLAIM, 0)
    if current.node == me:
        return Decision(Verdict.KEEP, current.epoch)
    if trigger is Trigger.REGISTRATION:
        # The device's packets reach this node now (the balancer moved it, or it rebound its address): the
        # node holding its datagrams must hold its session. The hub then closes the old owner's connection.
        return Decision(Verdict.CLAIM, current.epoch)
    if owner_alive:
        return Decision(Verdict.LEAVE, current.epoch)
    return Decision(Verdict.CLAIM, current.epoch)


def fenced(mine: Owner | None, stored: Owner | None) -> bool:
    """Whether a node that holds `mine` may still act for the device whose stored owner is `stored`."""
    return mine is not None and mine == stored


@dataclass(frozen=True, slots=True)
class HeartbeatPolicy:
    """A node's heartbeat is a key that expires after `ttl` seconds unless refreshed; refreshed every
    ttl / `beats_per_ttl`, so that many refreshes in a row must fail (a stalled loop, a partition) before
    others take the node's devices."""

    ttl: float = 10.0
    beats_per_ttl: int = 3

    def __post_init__(self) -> None:
        if self.ttl <= 0 or self.beats_per_ttl < 2:
            raise ValueError("a heartbeat needs ttl > 0 and at least two beats per ttl")

    @property
    def interval(self) -> float:
        return self.ttl / self.beats_per_ttl

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))
