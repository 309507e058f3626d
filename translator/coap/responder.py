"""Answers on the hot path: pre-encoded responses, the dedup cache, and waiting for the sink.

A confirmable telemetry message (Send, ingest, CON notification) is answered only when the sink's answer
is an `Outcome` (sink.acknowledged), at once or when its awaitable completes: 2.04 (or an empty ACK for a
notification). Back-pressure gets 5.03 with Max-Age (a notification gets no ACK, so the device retransmits
it). A sink that does not finish within `sink_timeout` is answered 5.03 Max-Age 1 by the periodic sweep.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from translator.coap import wire
from translator.coap.dedup import DedupCache
from translator.coap.errors import Code, answer_for
from translator.coap.hooks import RefusalHook, ignore_refusal, refusal_kind
from translator.coap.hotpath import DatagramTap
from translator.coap.registration import Peer
from translator.coap.sink import BrokenPromiseError, Delivery, Outcome, acknowledged

log = logging.getLogger(__name__)

_Inflight = tuple[float, wire.Datagram, Peer, "bytes | None", bool]


class Responder:
    def __init__(
        self,
        tap: DatagramTap,
        dedup: DedupCache,
        *,
        sink_timeout: float,
        clock: Callable[[], float],
        on_refused: RefusalHook = ignore_refusal,
    ) -> None:
        self._tap = tap
        self._on_refused = on_refused
        self._dedup = dedup
        self._sink_timeout = sink_timeout
        self._clock = clock
        self._inflight: dict[tuple[Peer, int], _Inflight] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._own_mid = 0

    def _mid(self) -> int:
        self._own_mid = (self._own_mid + 1) & 0xFFFF
        return self._own_mid

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def answer(
        self,
        msg: wire.Datagram,
        peer: Peer,
        pktinfo: bytes | None,
        code: int,
        *,
        reason: str = "",
        max_age: int | None = None,
    ) -> None:
        """Answer a hot request (piggy-backed ACK for CON, NON for NON) and remember it for duplicates."""
        options = [(wire.OPT_MAX_AGE, wire.uint(max_age))] if max_age is not None else ()
        payload = reason.encode("utf-8", "replace")[:200] if code >= 128 and reason else b""
        if msg.mtype == wire.CON:
            data = wire.encode(wire.ACK, code, msg.mid, msg.token, options, payload)
        else:
            data = wire.encode(wire.NON, code, self._mid(), msg.token, options, payload)
        if code >> 5 == 4:
            self._dedup.forget(peer, msg.mid)  # refused, no effect: a retransmission is answered afresh
        else:
            self._dedup.store(peer, msg.mid, data)
        self._tap.send(data, peer, pktinfo)

    def answer_error(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, exc: BaseException) -> None:
        code, reason, max_age = answer_for(exc)
        self._on_refused(code, refusal_kind(exc))
        if code == Code.INTERNAL_SERVER_ERROR:
            log.error("hot path: %s from %s", reason, peer, exc_info=exc)
        self.answer(msg, peer, pktinfo, code, reason=reason, max_age=max_age)

    def notification_done(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, ok: bool) -> None:
        """ACK a CON notification (ok), or leave it unacknowledged so the device retransmits."""
        if msg.mtype != wire.CON:
            return
        if ok:
            data = wire.encode(wire.ACK, 0, msg.mid, b"")
            self._dedup.store(peer, msg.mid, data)
            self._tap.send(data, peer, pktinfo)
        else:
            self._dedup.forget(peer, msg.mid)

    def await_sink(
        self,
        result: Delivery,
        msg: wire.Datagram,
        peer: Peer,
        pktinfo: bytes | None,
        *,
        notification: bool = False,
    ) -> None:
        """Answer a confirmable message once the sink's answer is known (now, if it is not awaitable)."""
        if isinstance(result, Outcome) or not isinstance(result, Awaitable):
            self._conclude(msg, peer, pktinfo, notification=notification, answer=result, exc=None)
            return
        key = (peer, msg.mid)
        if isinstance(result, asyncio.Future):
            future: asyncio.Future[Any] = result
        else:
            future = asyncio.ensure_future(result)
            self._tasks.add(future)
            future.add_done_callback(self._tasks.discard)
        self._inflight[key] = (self._clock() + self._sink_timeout, msg, peer, pktinfo, notification)
        future.add_done_callback(functools.partial(self._sink_done, key))

    def _sink_done(self, key: tuple[Peer, int], future: asyncio.Future[Any]) -> None:
        entry = self._inflight.pop(key, None)
        if entry is None:
            return  # answered already (timed out)
        _, msg, peer, pktinfo, notification = entry
        exc: BaseException | None
        exc = asyncio.CancelledError() if future.cancelled() else future.exception()
        answer = None if exc is not None else future.result()
        self._conclude(msg, peer, pktinfo, notification=notification, answer=answer, exc=exc)

    def _conclude(
        self,
        msg: wire.Datagram,
        peer: Peer,
        pktinfo: bytes | None,
        *,
        notification: bool,
        answer: object,
        exc: BaseException | None,
    ) -> None:
        if exc is None:
            try:
                acknowledged(answer)
            except BrokenPromiseError as broken:
                exc = broken
        if notification:
            self.notification_done(msg, peer, pktinfo, exc is None)
        elif exc is None:
            self.answer(msg, peer, pktinfo, Code.CHANGED)
        else:
            self.answer_error(msg, peer, pktinfo, exc)

    def sweep(self, now: float) -> int:
        """Answer 5.03 for confirmable messages whose sink did not finish in time."""
        late = [k for k, v in self._inflight.items() if v[0] <= now]
        for key in late:
            _, msg, peer, pktinfo, notification = self._inflight.pop(key)
            if notification:
                self.notification_done(msg, peer, pktinfo, False)
            else:
                self.answer(
                    msg,
                    peer,
                    pktinfo,
                    Code.SERVICE_UNAVAILABLE,
                    reason="sink did not confirm in time",
                    max_age=1,
                )
        return len(late)

    async def close(self) -> None:
        self._inflight.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
