"""Expired owners: every node looks, now and then, for owner nodes whose heartbeat is gone, takes their
devices and replays their outboxes, without waiting for the devices to register again (they may never come
back, and a message the dead node acknowledged must still reach the hub).

Each node sweeps once per `SweepPolicy.interval` (the heartbeat TTL), each wait jittered so that the nodes
of a cluster do not sweep in step. A device is taken with the orphan claim (ownership.py: a compare-and-set
on the epoch read, which the claim script makes only while the owner's heartbeat is still gone), so of two
nodes sweeping the same dead node at once, each device goes to exactly one; the other reads the new owner
and leaves it. A dead node whose devices are all taken is dropped from the index of owner nodes.

The Redis side is RedisOwnership's (`dead_nodes`, `owned_by`, `forget_node`); what a node does with the
devices it took (start their lives to replay their outboxes) is the bridge's `adopt`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from translator.cluster.claims import claimed
from translator.cluster.ownership import Trigger
from translator.cluster.tasks import cancelled, every
from translator.store.base import StoreError

if TYPE_CHECKING:
    from translator.cluster.redis_ownership import RedisOwnership

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    """`interval`: the mean wait between two sweeps of one node; each wait is drawn from
    interval × [1 - jitter, 1 + jitter]. A dead node's devices are taken within its heartbeat TTL (for the
    key to expire) plus one wait, at most interval × (1 + jitter)."""

    interval: float = 10.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.interval <= 0 or not 0 <= self.jitter < 1:
            raise ValueError("a sweep needs interval > 0 and 0 <= jitter < 1")

    def wait(self, rng: random.Random) -> float:
        return self.interval * rng.uniform(1 - self.jitter, 1 + self.jitter)

    @property
    def longest_wait(self) -> float:
        return self.interval * (1 + self.jitter)


class OrphanSweeper:
    def __init__(
        self,
        ownership: RedisOwnership,
        adopt: Callable[[set[str]], Awaitable[None]],
        *,
        policy: SweepPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._ownership = ownership
        self._adopt = adopt
        self.policy = policy or SweepPolicy(interval=ownership.heartbeat.ttl)
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self.counters = {"sweeps": 0, "claimed": 0, "failures": 0}

    def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_forever(), name=f"sweeper-{self._ownership.node}")

    async def stop(self) -> None:
        await cancelled(self._task)
        self._task = None

    async def _sweep_forever(self) -> None:
        node = self._ownership.node
        wait = functools.partial(self.policy.wait, self._rng)
        await every(wait, self._counted_sweep, what=f"node {node}: sweep for dead owners", log=log)

    async def _counted_sweep(self) -> None:
        try:
            await self.sweep()
        except Exception:  # Redis away, or an adoption that failed: the next sweep tries again
            self.counters["failures"] += 1
            raise

    async def sweep(self) -> set[str]:
        """One pass: the devices this node took from dead owners (already handed to `adopt`)."""
        ownership = self._ownership
        self.counters["sweeps"] += 1
        taken: set[str] = set()
        for node in await ownership.dead_nodes():
            devices = await ownership.owned_by(node)
            won = await claimed(self._claim, devices, Trigger.ORPHANED)
            if won:
                log.info("node %s took %d devices of dead node %s", ownership.node, len(won), node)
            taken |= won
            await ownership.forget_node(node)  # only once nothing is left in its set
        if taken:
            self.counters["claimed"] += len(taken)
            await self._adopt(taken)
        return taken

    async def _claim(self, device_id: str, trigger: Trigger) -> bool:
        # A claim that fails leaves the device in the dead node's set for the next sweep; the sweep goes on,
        # so the claims already won are adopted (they left that set: no later sweep would see them).
        try:
            return await self._ownership.claim(device_id, trigger) is not None
        except StoreError as error:
            self.counters["failures"] += 1
            log.warning("node %s: %s not taken this sweep: %s", self._ownership.node, device_id, error)
            return False
