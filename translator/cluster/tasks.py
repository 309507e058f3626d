"""A node's background loops (heartbeat, quota share, sweeper): how they run and how they end at a stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from translator.store.base import StoreError


async def every(
    wait: Callable[[], float], step: Callable[[], Awaitable[Any]], *, what: str, log: logging.Logger
) -> None:
    """Run `step` after each `wait()` seconds until cancelled. A failure never ends the loop: a node whose
    heartbeat loop died quietly would look dead to the others, who would take its devices while it still
    holds their sessions. Redis away (StoreError) is a warning; anything else is logged with its traceback."""
    while True:
        await asyncio.sleep(wait())
        try:
            await step()
        except StoreError as error:
            log.warning("%s failed: %s", what, error)
        except Exception:
            log.exception("%s failed unexpectedly", what)


async def cancelled(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (when there is one) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
