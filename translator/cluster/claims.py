"""Many claims at once, bounded: a node starting with thousands of restored registrations asks Redis about
them concurrently (each claim is a read and maybe a script: ~0.7 ms one at a time, so 10k devices would
take 7 s serially), at most `concurrency` in flight so the start does not open thousands of connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from translator.cluster.ownership import Trigger

CONCURRENCY = 64


async def claimed(
    claim: Callable[[str, Trigger], Awaitable[bool]],
    device_ids: Iterable[str],
    trigger: Trigger,
    *,
    concurrency: int = CONCURRENCY,
) -> set[str]:
    """The devices among `device_ids` that `claim` grants this node."""
    slots = asyncio.Semaphore(concurrency)

    async def one(device_id: str) -> str | None:
        async with slots:
            return device_id if await claim(device_id, trigger) else None

    granted = await asyncio.gather(*(one(device_id) for device_id in dict.fromkeys(device_ids)))
    return {device_id for device_id in granted if device_id is not None}
