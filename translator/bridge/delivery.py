"""One device's telemetry on its way to IoT Central: the asyncio shell around the pure delivery order
(`ordering.DeliveryOrder`, which decides what happens next and says why the order and the promise hold).
This module does the I/O the order asks for — publishes, outbox writes, replay — and feeds back results.

The promise. `send()` returns a future that only two facts complete with a result: the hub's PUBACK
(`Outcome.PUBLISHED`: the direct publish's callback, or `session.send_telemetry` returning; IoT Hub takes
device-to-cloud messages at QoS 1 and acknowledges them with PUBACK,
https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub) or the outbox append returning, which
the store does once the row is committed with synchronous=FULL (`Outcome.KEPT`). Every other ending —
back-pressure, a store failure, the device's life closing — completes it with an exception, which the CoAP
face answers 5.03/5.00; a future left pending is answered 5.03 by the CoAP face's sink timeout. The CoAP
face turns only an `Outcome` into a 2.04 (`translator.coap.sink`).

The common case costs no coroutine: a single message arriving while nothing of the device is under way is
published straight from the datagram handler (`publish_telemetry_nowait`) and settled by the PUBACK
callback; the bridge's sweep (`sweep.DirectSweep`) bounds its wait. Every other I/O runs as one task at a
time, which exists only while it runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from translator.bridge.ordering import DeliveryOrder
from translator.bridge.ordering_events import (
    Acknowledge,
    Action,
    Arrived,
    Batch,
    Close,
    DirectRefused,
    Event,
    Keep,
    Kept,
    Load,
    Loaded,
    NotKept,
    NotLoaded,
    NotPublished,
    NotRemoved,
    Paced,
    Publish,
    Published,
    Refuse,
    Remove,
    Removed,
    ReplayDue,
    Replayed,
    ReplayIn,
    RowNotSent,
    RowSent,
    SendRow,
    SessionDown,
    SessionUp,
    Started,
)
from translator.bridge.sweep import DirectSweep
from translator.coap import BackPressure, Outcome
from translator.codec import TelemetryMessage
from translator.iotc.client.ephemeral import EphemeralSession
from translator.iotc.client.session import DeviceSession
from translator.iotc.protocol.errors import HubError
from translator.ops.metrics import Metrics
from translator.store import OutboxFullError, OutboxMessage, Store, StoreError

_JSON = json.JSONEncoder(separators=(",", ":"))  # json.dumps with options builds an encoder per call
QUEUE_LIMIT = 1000  # telemetry batches waiting per device before the device is told to back off
REPLAY_BATCH = 50
STORE_RETRY = 5.0  # seconds before a replay the store failed is tried again
CLOSING_RETRY = 5  # Max-Age for messages of a device whose life is closing
PACE_LIMIT = 1.0  # seconds a message may wait for the pacers in line: a replay row, or one already late


@dataclass(slots=True)
class _Promise:
    done: asyncio.Future[Outcome]
    received: float  # wall clock: the message's time if it must wait in the outbox


_Order = DeliveryOrder[TelemetryMessage, _Promise, OutboxMessage]
_Action = Action[TelemetryMessage, _Promise, OutboxMessage]
_Event = Event[TelemetryMessage, _Promise, OutboxMessage]


def _stamped(message: TelemetryMessage, received: float) -> TelemetryMessage:
    if message.time is not None:
        return message
    return dataclasses.replace(message, time=datetime.fromtimestamp(received, UTC))


def _refuse(done: asyncio.Future[Outcome], error: BaseException) -> None:
    if not done.done():
        done.set_exception(error)
        done.exception()  # retrieved: a device gone before its answer is no reason for a warning


def _payload(message: TelemetryMessage) -> bytes:
    return _JSON.encode(message.values).encode()


class TelemetryDelivery:
    """A device's telemetry pipeline; owned by its DeviceLife."""

    def __init__(
        self,
        device_id: str,
        *,
        store: Store,
        metrics: Metrics,
        sweep: DirectSweep,
        telemetry_timeout: float,
        clock: Callable[[], float],
        log: logging.LoggerAdapter[Any],
        owns: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.device_id = device_id
        self.session: DeviceSession | EphemeralSession | None = None
        self._store = store
        self._metrics = metrics
        self._sweep = sweep
        self._timeout = telemetry_timeout
        self._clock = clock
        self._log = log
        self._owns = owns  # on a shared store: whether this node still owns the device (docs/cluster.md)
        # Until `start` knows better the outbox counts as empty: no session, so nothing is published anyway.
        self._order: _Order = DeliveryOrder(
            chunk=REPLAY_BATCH, store_retry=STORE_RETRY, slow_hub_retry=2 * telemetry_timeout
        )
        self._events: deque[_Event] = deque()
        self._feeding = False
        self._direct: tuple[Publish[TelemetryMessage, _Promise], float] | None = None  # and its deadline
        self._io: asyncio.Task[None] | None = None
        self._replay_timer: asyncio.TimerHandle | None = None

    async def start(self, session: DeviceSession | EphemeralSession) -> None:
        self.session = session
        self._feed(Started(await self._store.outbox_depth(self.device_id) == 0))

    async def close(self) -> None:
        if self._replay_timer is not None:
            self._replay_timer.cancel()
        self._end_direct()
        self._feed(Close(BackPressure(f"{self.device_id}: session closing", retry_after=CLOSING_RETRY)))
        io, self._io = self._io, None
        if io is not None and not io.done():  # nothing to wait for otherwise: the close goes on at once
            io.cancel()
            await asyncio.gather(io, return_exceptions=True)

    # -- the entry ---------------------------------------------------------------------------------

    def send(
        self, messages: Sequence[TelemetryMessage], received: float | None = None
    ) -> asyncio.Future[Outcome]:
        """Queue telemetry; the future yields an Outcome once it is safe (raises BackPressure when the
        device must retry later). `received` (wall clock): when it came from the device, if before now."""
        if self._order.closed:
            raise BackPressure(f"{self.device_id}: session closing", retry_after=CLOSING_RETRY)
        if self._order.waiting >= QUEUE_LIMIT:
            self._metrics.errors.labels(kind="backpressure").inc()
            raise BackPressure(f"{self.device_id}: {QUEUE_LIMIT} batches waiting", retry_after=5)
        late = received is not None
        received = time.time() if received is None else received
        if late:
            # A message without the device's own time that waited for the session goes out with the time
            # it was received (iothub-creation-time-utc), not the time the hub gets it.
            messages = [_stamped(message, received) for message in messages]
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._feed(Arrived(Batch(tuple(messages), _Promise(done, received), direct=not late)))
        return done

    def on_connected(self) -> None:
        self._feed(SessionUp())

    def replay_now(self) -> None:
        """Replay the outbox now rather than at the next reason to (the gateway's replayOutbox command)."""
        if not self._order.closed:
            self._feed(ReplayDue())

    def expire_direct(self, now: float) -> None:
        """Called by the bridge's sweep: a direct publish past its deadline goes to the outbox."""
        direct = self._direct
        if direct is not None and direct[1] <= now:
            self._log.info("publish not acknowledged in time: keeping it in the outbox")
            self._end_direct()
            self._feed(NotPublished(direct[0], timed_out=True))

    # -- feeding the order -------------------------------------------------------------------------

    def _feed(self, event: _Event) -> None:
        """Hand `event` to the order and perform what it asks; an event raised while performing (a direct
        publish the session refuses) waits its turn, so the order sees events one at a time."""
        if self._feeding:
            self._events.append(event)
            return
        self._feeding = True
        try:
            while True:
                self._sync_session()
                for action in self._order.handle(event):
                    self._perform(action)
                if not self._events:
                    return
                event = self._events.popleft()
        finally:
            self._feeding = False

    def _sync_session(self) -> None:
        """The order decides with what the session says now; a change it has not been told of comes first."""
        session = self.session
        up = session is not None and session.is_connected
        if up is not self._order.connected:
            for action in self._order.handle(SessionUp() if up else SessionDown()):
                self._perform(action)

    def _perform(self, action: _Action) -> None:
        match action:
            case Acknowledge(batch, kept):
                if not batch.tag.done.done():
                    batch.tag.done.set_result(Outcome.KEPT if kept else Outcome.PUBLISHED)
            case Refuse(batch, error):
                _refuse(batch.tag.done, error)
            case Publish(direct=True):
                self._publish_direct(action)
            case Publish():
                self._run(functools.partial(self._publish, action))
            case Keep():
                self._run(functools.partial(self._keep, action))
            case Load():
                self._run(functools.partial(self._load, action))
            case SendRow():
                self._run(functools.partial(self._send_row, action))
            case Remove():
                self._run(functools.partial(self._remove, action))
            case ReplayIn(delay, why):
                self._replay_in(delay, why.value)
            case Replayed(count):
                self._log.info("replayed %d messages from the outbox", count)

    def _run(self, work: Callable[[], Coroutine[Any, Any, _Event | None]]) -> None:
        """One I/O at a time (the order starts the next one only when this one answered). The coroutine is
        made when the task first runs: a task cancelled before that (a shutdown) leaves none un-awaited."""
        self._io = asyncio.get_running_loop().create_task(
            self._answer(work), name=f"deliver-{self.device_id}"
        )

    async def _answer(self, work: Callable[[], Coroutine[Any, Any, _Event | None]]) -> None:
        event = await work()
        if event is not None:
            self._feed(event)

    # -- publishing ----------------------------------------------------------------------------------

    def _publish_direct(self, action: Publish[TelemetryMessage, _Promise]) -> None:
        session, message = self.session, action.message
        deadline = self._clock() + self._timeout
        self._direct = (action, deadline)  # before publishing: its callback may come at once
        if session is None or not session.publish_telemetry_nowait(
            _payload(message),
            functools.partial(self._direct_acked, action),
            component=message.component,
            creation_time=message.time,
        ):
            self._direct = None
            self._feed(DirectRefused(action))
            return
        if self._direct is not None:
            self._sweep.watch(self, deadline)

    def _direct_acked(
        self, action: Publish[TelemetryMessage, _Promise], outcome: BaseException | None
    ) -> None:
        if self._direct is None or self._direct[0] is not action:
            return  # its deadline passed: it is being kept in the outbox already
        self._end_direct()
        if outcome is None:
            self._metrics.messages_out.inc()
            self._feed(Published(action))  # the hub's PUBACK
        else:
            self._log.info("publish lost (%s): sending it again", outcome)
            self._feed(NotPublished(action, timed_out=False))

    def _end_direct(self) -> None:
        if self._direct is not None:
            self._direct = None
            self._sweep.unwatch(self)

    async def _publish(self, action: Publish[TelemetryMessage, _Promise]) -> _Event:
        session, message = self.session, action.message
        if session is None:
            return NotPublished(action, timed_out=False)
        # Over the device's or the fleet's send rate (iotc/client/pacer.py) a message does not wait past
        # its time since it was received (nor long, if that is up already): it is kept, and the replay
        # sends it at the rate.
        wait = session.telemetry_wait()
        if wait > max(PACE_LIMIT, action.batch.tag.received + self._timeout - time.time()):
            self._log.info("over the send rate for %.1f s: keeping it in the outbox", wait)
            return Paced(action, wait)
        try:
            await session.send_telemetry(
                _payload(message),
                component=message.component,
                creation_time=message.time,
                timeout=self._timeout,
            )
        except (TimeoutError, HubError) as error:
            self._log.info("publish not acknowledged (%s): keeping it in the outbox", error)
            return NotPublished(action, timed_out=True)
        except Exception:  # whatever went wrong, the message is kept rather than the order stuck
            self._log.exception("publish failed: keeping it in the outbox")
            self._metrics.errors.labels(kind="bridge").inc()
            return NotPublished(action, timed_out=True)
        self._metrics.messages_out.inc()
        return Published(action)  # send_telemetry returns only on the PUBACK

    async def _keep(self, action: Keep[TelemetryMessage, _Promise]) -> _Event:
        message = action.message
        moment = action.batch.tag.received if message.time is None else message.time.timestamp()
        try:
            await self._store.outbox_append(
                self.device_id, _payload(message), component=message.component, creation_time=moment
            )
        except OutboxFullError as error:
            self._metrics.errors.labels(kind="outbox_full").inc()
            return NotKept(action, BackPressure(str(error), retry_after=int(error.retry_after)))
        except StoreError as error:
            # One batch fails (the device gets 5.03 and retries); delivery goes on with the next ones.
            self._log.error("telemetry not kept: %s", error)
            self._metrics.errors.labels(kind="store").inc()
            return NotKept(action, BackPressure(f"store failure: {error}", retry_after=5))
        except Exception as error:
            self._log.exception("telemetry delivery failed")
            self._metrics.errors.labels(kind="bridge").inc()
            return NotKept(action, error)
        self._metrics.outboxed.inc()
        return Kept(action)  # outbox_append returns once the row is committed (synchronous=FULL)

    # -- the outbox replay -------------------------------------------------------------------------

    async def _load(self, action: Load) -> _Event:
        try:
            if self._owns is not None and not await self._owns():
                self._log.info("outbox replay left to the device's new owner node")
                return Loaded(action, [])
            return Loaded(action, await self._store.outbox_peek(self.device_id, action.limit))
        except Exception as error:  # the replay must go on once the store reads again
            self._store_failed("outbox replay failed (%s): again in %.0f s", error)
            return NotLoaded(action)

    async def _send_row(self, action: SendRow[OutboxMessage]) -> _Event:
        session, row = self.session, action.row
        if session is None:
            return RowNotSent(action)
        wait = session.telemetry_wait()
        if wait > PACE_LIMIT:
            self._log.info("outbox replay paced: again in %.1f s", wait)
            return Paced(action, wait)  # the replay pauses that long; new messages are kept meanwhile
        moment = None if row.creation_time is None else datetime.fromtimestamp(row.creation_time, UTC)
        try:
            await session.send_telemetry(
                row.payload,
                component=row.component,
                creation_time=moment,
                custom=row.properties or None,
                timeout=self._timeout + wait,  # the pacers' wait is not the hub being slow
            )
        except (TimeoutError, HubError) as error:
            self._log.info("outbox replay paused (%s): again in %.0f s", error, 2 * self._timeout)
            return RowNotSent(action)
        except Exception:  # the replay must outlive whatever failed, and go on later
            self._log.exception("outbox replay failed")
            self._metrics.errors.labels(kind="bridge").inc()
            return RowNotSent(action)
        self._metrics.replayed.inc()
        self._metrics.messages_out.inc()
        return RowSent(action)

    async def _remove(self, action: Remove) -> _Event:
        try:
            await self._store.outbox_remove(list(action.sequences))
        except Exception as error:
            self._store_failed("replayed messages not removed from the outbox (%s): again in %.0f s", error)
            return NotRemoved(action)
        return Removed(action)

    def _store_failed(self, what: str, error: Exception) -> None:
        self._log.warning(what, error, STORE_RETRY)
        self._metrics.errors.labels(kind="store").inc()

    def _replay_in(self, delay: float, why: str) -> None:
        if self._replay_timer is not None:
            self._replay_timer.cancel()
        self._log.debug("outbox replay again in %.0f s (%s)", delay, why)
        self._replay_timer = asyncio.get_running_loop().call_later(
            delay, functools.partial(self._feed, ReplayDue())
        )
