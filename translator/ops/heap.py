"""Give freed heap memory back to the system, so RSS follows live memory after a burst.

glibc keeps memory freed in the middle of its heap (a flood's requests, a registration wave's buffers)
instead of returning it: RSS stayed at its peak after a flood although the objects were gone (a Block1
flood: 30 → 39 MB after every transfer expired, 33 MB after `malloc_trim(0)`). `trim_periodically` calls
`malloc_trim(0)` once a minute in a worker thread (ctypes releases the GIL; the trim takes glibc's arena
lock, not the event loop). Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def libc_trim() -> Callable[[], int] | None:
    """glibc's `malloc_trim(0)` as a callable, or None without glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def call() -> int:
        return int(trim(0))

    return call


async def trim_periodically(trim: Callable[[], int] | None, *, interval: float = 60.0) -> None:
    """Run until cancelled: `trim()` every `interval` seconds, off the event loop thread."""
    if trim is None:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(trim)
        except Exception:  # never worth ending the server over
            log.exception("heap trim failed")
