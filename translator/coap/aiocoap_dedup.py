"""aiocoap's per-request duplicate detection, replaced by the server's bounded `DedupCache`.

aiocoap remembers every request it receives for EXCHANGE_LIFETIME (247 s): the key, a timer, and the
response *with the request attached* (~2.5 KB per request; 150k `GET /nothing` held 390 MB). The tap
now checks every request against the compact, capped dedup cache before aiocoap sees it (see
`DatagramTap._route`), so aiocoap's own check is turned off here, and the answers aiocoap sends are
recorded in the cache as encoded bytes for retransmissions — or forgotten when they are 4.xx (the
request had no effect; see `dedup`).
"""

from __future__ import annotations

import logging
from typing import Any

from translator.coap import wire
from translator.coap.dedup import DedupCache

log = logging.getLogger(__name__)


def take_over(message_manager: Any, dedup: DedupCache) -> bool:
    """Make `dedup` the only duplicate detection of `message_manager` (aiocoap's MessageManager).

    False (and a warning) when this aiocoap version has no such hooks: its cache then stays, unbounded.
    """
    if not all(
        callable(getattr(message_manager, name, None))
        for name in ("_deduplicate_message", "_store_response_for_duplicates")
    ):
        log.warning("aiocoap has no duplicate-detection hooks to replace: its request cache is unbounded")
        return False

    def deduplicate(message: Any) -> bool:
        return False  # the tap has checked the request already

    def store_response(message: Any) -> None:
        request = getattr(message, "request", None)
        if request is not None and int(message.code) >> 5 == 4:
            dedup.forget(request.remote.sockaddr, request.mid)
        elif message.mtype == wire.ACK:  # a piggy-backed response or an empty ACK: the request's answer
            dedup.store(message.remote.sockaddr, message.mid, message.encode())

    message_manager._deduplicate_message = deduplicate
    message_manager._store_response_for_duplicates = store_response
    return True
