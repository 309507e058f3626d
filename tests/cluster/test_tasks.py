"""A node's background loops (translator/cluster/tasks.py): no failure ends them, and a stop does."""

from __future__ import annotations

import asyncio
import logging

import pytest

from translator.cluster.tasks import cancelled, every
from translator.store.base import StoreError

log = logging.getLogger("test.tasks")


async def test_a_loop_outlives_a_store_failure_and_an_unexpected_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A heartbeat loop that ended on the first surprise would make its node look dead to the others.
    steps: list[int] = []
    failures = [StoreError("redis away"), RuntimeError("a bug")]
    done = asyncio.Event()

    async def step() -> None:
        steps.append(len(steps))
        if failures:
            raise failures.pop(0)
        done.set()

    loop = asyncio.create_task(every(lambda: 0.001, step, what="node n1: heartbeat", log=log))
    async with asyncio.timeout(5):
        await done.wait()
    await cancelled(loop)
    assert loop.cancelled() and len(steps) >= 3
    warnings = [r for r in caplog.records if r.name == "test.tasks"]
    assert [(r.levelno, r.getMessage()) for r in warnings] == [
        (logging.WARNING, "node n1: heartbeat failed: redis away"),
        (logging.ERROR, "node n1: heartbeat failed unexpectedly"),
    ]
    assert warnings[1].exc_info is not None  # with its traceback
    await cancelled(None)  # nothing to stop: fine
