"""Block-wise transfers (RFC 7959) with bounded memory, in place of aiocoap's unbounded caches.

aiocoap reassembles Block1 requests in a dict with no limit on size or count, and the server checked
`coap.max_payload` only once the last block was in (8,192 blocks of 1 KB were all accepted). Here:

* a Block1 transfer is refused with 4.13 (Size1 = the limit) as soon as its running size, or the total
  its Size1 option announces, passes `max_payload` (RFC 7959 §2.9.3), and its blocks are dropped;
* at most `max_transfers` transfers are open at once; a new one beyond that gets 5.03 with Max-Age;
* a transfer not continued within `lifetime` seconds is dropped (its next block gets 4.08);
* a completed transfer is dropped at once: a retransmitted last block is answered from the dedup cache.

aiocoap also caches any response larger than the Block2 size a request asks for (to serve it block by
block). This server's responses carry at most a short diagnostic text, so `ShortResponses` cuts the text
to the size asked for instead of caching it.

Both objects take the place of `_block1` / `_block2` on the server's resource; aiocoap's
`Resource._render_to_pipe` calls them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiocoap import Message, error
from aiocoap.blockwise import ContinueException, IncompleteException, _extract_block_key
from aiocoap.numbers.codes import Code as AioCode


class TooLarge(error.ConstructionRenderableError):  # type: ignore[misc]
    code = AioCode.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(f"request entity exceeds {limit} bytes")
        self.limit = limit

    def to_message(self) -> Any:
        message = super().to_message()
        message.opt.size1 = self.limit
        return message


class Busy(error.ConstructionRenderableError):  # type: ignore[misc]
    code = AioCode.SERVICE_UNAVAILABLE

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many block-wise transfers")
        self.retry_after = retry_after

    def to_message(self) -> Any:
        message = super().to_message()
        message.opt.max_age = self.retry_after
        return message


class _Assembly:
    __slots__ = ("message", "touched")

    def __init__(self, message: Any, now: float) -> None:
        self.message = message
        self.touched = now


class Block1Assembler:
    """Reassembles Block1 requests under a size limit, a cap on open transfers and an idle lifetime."""

    def __init__(
        self,
        *,
        max_payload: int,
        max_transfers: int = 256,
        lifetime: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_payload = max_payload
        self.max_transfers = max_transfers
        self.lifetime = lifetime
        self._clock = clock
        # in order of last activity: the first is the next to expire
        self._open: dict[Any, _Assembly] = {}
        self.refused = 0

    def __len__(self) -> int:
        return len(self._open)

    @property
    def buffered(self) -> int:
        """Bytes held by open transfers."""
        return sum(len(a.message.payload) for a in self._open.values())

    def expire(self, now: float) -> int:
        dropped = 0
        while self._open:
            key, oldest = next(iter(self._open.items()))
            if now - oldest.touched < self.lifetime:
                break
            del self._open[key]
            dropped += 1
        return dropped

    def feed_and_take(self, request: Any) -> Any:
        """The whole request once its last block is in; raises 2.31 Continue, 4.08, 4.13 or 5.03."""
        block1 = request.opt.block1
        if block1 is None:
            return request
        now = self._clock()
        self.expire(now)
        key = _extract_block_key(request)
        announced = request.opt.size1
        if block1.start + len(request.payload) > self.max_payload or (
            announced is not None and announced > self.max_payload
        ):
            self._open.pop(key, None)
            self.refused += 1
            raise TooLarge(self.max_payload)
        if block1.block_number == 0:
            if self._open.pop(key, None) is None and len(self._open) >= self.max_transfers:
                self.refused += 1
                raise Busy(retry_after=max(1, int(self.lifetime / 4)))
            assembly = _Assembly(request, now)
        else:
            found = self._open.pop(key, None)
            if found is None:
                raise IncompleteException
            try:
                found.message._append_request_block(request)
            except (ValueError, error.BadRequest):
                raise IncompleteException from None  # a gap or an overlap: the client starts over
            found.touched = now
            assembly = found
        if block1.more:
            self._open[key] = assembly
            raise ContinueException(block1)
        return assembly.message


class ShortResponses:
    """Block2 without a cache: every response of this server fits one block once its diagnostic text is
    cut to the block size the client asked for."""

    async def extract_or_insert(self, request: Any, build: Callable[[], Awaitable[Any]]) -> Any:
        block2 = request.opt.block2
        if block2 is not None and block2.block_number > 0:
            raise IncompleteException  # never offered: no response here has a second block
        response: Message = await build()
        limit = request.remote.maximum_payload_size
        if block2 is not None:
            limit = min(limit, block2.size)
        if len(response.payload) > limit:
            # a diagnostic payload is UTF-8 text (RFC 7252 §5.5.2): never cut inside a character
            response.payload = response.payload[:limit].decode("utf-8", "ignore").encode("utf-8")
        return response
