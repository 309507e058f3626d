"""Several translators on one IoT Central application share its quotas: each keeps to 1/N of them.

The quotas the pacers keep to (DPS registrations per minute, hub connections per second, device-to-cloud
messages and twin updates per second; translator/settings.py cites Microsoft's pages) are the
application's, not a process's. N nodes each pacing at the whole quota would run into it N times over, and
the service then throttles everyone. Dividing it evenly among the live nodes (the heartbeat registry,
`RedisOwnership.nodes_alive`) keeps the cluster under the quota without a Redis round trip per message
(issue 17 §5). It is conservative: a node with less than its share of the load leaves some quota unused,
which costs time at a cold start of an uneven fleet, never a refusal. Each device's own send rate stays
whole, since one node at a time serves a device.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from translator.cluster.tasks import cancelled, every
from translator.iotc.client.pacer import FleetPacing
from translator.store.base import StoreError

log = logging.getLogger(__name__)


class QuotaShare:
    """Re-reads the number of live nodes every `interval` seconds and shares the fleet's pacers by it. With
    `at_least` N (the workers of one supervisor) the share is never more than 1/N: workers start one after
    another, and a dead one is restarted, so a count below N is a moment, not room to take."""

    def __init__(
        self,
        count_nodes: Callable[[], Awaitable[int]],
        pacing: FleetPacing,
        *,
        interval: float,
        at_least: int = 1,
    ) -> None:
        self._count_nodes = count_nodes
        self._pacing = pacing
        self._interval = interval
        self._at_least = max(1, at_least)
        self.nodes = self._at_least
        pacing.share_among(self.nodes)
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> int:
        """Count the nodes now and share accordingly; on a store failure keep the last share."""
        try:
            nodes = max(self._at_least, await self._count_nodes())
        except StoreError as error:
            log.warning("quota share: node count unavailable, keeping 1/%d: %s", self.nodes, error)
            return self.nodes
        if nodes != self.nodes:
            log.info("quota share: %d translators share the application's quotas, 1/%d each", nodes, nodes)
            self.nodes = nodes
            self._pacing.share_among(nodes)
        return nodes

    async def start(self) -> None:
        await self.refresh()  # shared before the first device connects
        self._task = asyncio.create_task(self._run(), name="quota-share")

    async def _run(self) -> None:
        await every(lambda: self._interval, self.refresh, what="quota share", log=log)

    async def stop(self) -> None:
        await cancelled(self._task)
        self._task = None
