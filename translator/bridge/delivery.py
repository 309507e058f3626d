"""One device's telemetry on its way to IoT Central: the direct path, the queue and its worker, the outbox and
its replay — and the promise behind every acknowledgement the device gets.

The promise. `send()` returns a future that only two facts complete with a result: the hub's PUBACK
(`Outcome.PUBLISHED`, in `_direct_acked` or after `session.send_telemetry` returned; IoT Hub takes
device-to-cloud messages at QoS 1 and acknowledges them with PUBACK,
https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub) or the outbox append
returning, which the store does once the row is committed with synchronous=FULL (`Outcome.KEPT`, in
`_keep`). Every other ending — back-pressure, a store failure, the device's life closing — completes it
with an exception, which the CoAP face answers 5.03/5.00; a future left pending is answered 5.03 by the
CoAP face's sink timeout. The CoAP face turns only an `Outcome` into a 2.04 (`translator.coap.sink`).

Order. Telemetry of a device goes through one queue and one worker, so messages reach IoT Central in the
order the device sent them, whether directly, or kept in the outbox while the hub is away and replayed
(before anything newer) when the session is back.

The common case skips the worker: a single message arriving while nothing of the device is queued, in flight
or in the outbox is published straight from the datagram handler and settled by the PUBACK callback (no task
switch, no coroutine per message). It is the only message of the device in flight then; everything after it
waits in the queue, and if it fails the worker takes it first (again, or into the outbox once its deadline
passed, which the bridge's sweep watches), so the order holds.

Replay never stops for good: a replay that fails (hub too slow, store unreadable, a removal that cannot be
written) pauses and is tried again while connected; sequences sent but not yet removed are remembered and
removed before anything is sent again, so a failing removal costs no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from translator.coap import BackPressure, Outcome
from translator.codec import TelemetryMessage
from translator.iotc.client.session import DeviceSession
from translator.iotc.protocol.errors import HubError
from translator.store import OutboxFullError, StoreError

if TYPE_CHECKING:
    from translator.bridge.bridge import Bridge

_JSON = json.JSONEncoder(separators=(",", ":"))  # json.dumps with options builds an encoder per call
QUEUE_LIMIT = 1000  # telemetry batches waiting per device before the device is told to back off
REPLAY_BATCH = 50
STORE_RETRY = 5.0  # seconds before a replay the store failed is tried again
CLOSING_RETRY = 5  # Max-Age for messages of a device whose life is closing


@dataclass(frozen=True, slots=True)
class _Replay:
    """A marker in the delivery queue: replay the outbox now (the session is back)."""


@dataclass(frozen=True, slots=True)
class _Wake:
    """A marker in the delivery queue: a direct publish failed, the worker must take it over."""


@dataclass(frozen=True, slots=True)
class _Direct:
    """A message published straight from the datagram handler, waiting for its PUBACK."""

    message: TelemetryMessage
    payload: bytes
    done: asyncio.Future[Outcome]
    deadline: float
    received: float  # wall clock: the message's time if it must wait after all


_Item = tuple[Sequence[TelemetryMessage], asyncio.Future[Outcome]] | _Replay | _Wake


def _stamped(message: TelemetryMessage, received: float) -> TelemetryMessage:
    if message.time is not None:
        return message
    return dataclasses.replace(message, time=datetime.fromtimestamp(received, UTC))


def _refuse(done: asyncio.Future[Outcome], error: BaseException) -> None:
    if not done.done():
        done.set_exception(error)
        done.exception()  # retrieved: a device gone before its answer is no reason for a warning


class TelemetryDelivery:
    """A device's telemetry pipeline; owned by its DeviceLife."""

    def __init__(self, bridge: Bridge, device_id: str, log: logging.LoggerAdapter[Any]) -> None:
        self.bridge = bridge
        self.device_id = device_id
        self.session: DeviceSession | None = None
        # The queue and its worker exist only while a device needs them (a message while another is in
        # flight, the outbox, a replay) and end when the queue is empty: most of the time a device takes
        # the direct path, and the pair costs ~5 KB per device.
        self._queue: asyncio.Queue[_Item] | None = None
        self._outbox_empty = True
        self._unremoved: list[int] = []  # replayed (PUBACKed) but not yet removed from the outbox
        self._direct: _Direct | None = None
        self._direct_finished: asyncio.Future[None] | None = None  # what the worker awaits, when it must
        self._retry: tuple[_Direct, bool] | None = None  # a failed direct publish; True: its deadline passed
        self._working = False
        self._replay_timer: asyncio.TimerHandle | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._log = log

    async def start(self, session: DeviceSession) -> None:
        self.session = session
        self._outbox_empty = await self.bridge.store.outbox_depth(self.device_id) == 0

    async def close(self) -> None:
        self._closed = True
        if self._replay_timer is not None:
            self._replay_timer.cancel()
        closing = BackPressure(f"{self.device_id}: session closing", retry_after=CLOSING_RETRY)
        direct = self._direct
        if direct is not None:
            self._end_direct()
            _refuse(direct.done, closing)
        retry, self._retry = self._retry, None
        if retry is not None:
            _refuse(retry[0].done, closing)
        worker, queue = self._worker, self._queue
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        while queue is not None and not queue.empty():  # what the worker never took: refused, not left open
            item = queue.get_nowait()
            if isinstance(item, tuple):
                _refuse(item[1], closing)

    # -- the entry ---------------------------------------------------------------------------------

    def send(
        self, messages: Sequence[TelemetryMessage], received: float | None = None
    ) -> asyncio.Future[Outcome]:
        """Queue telemetry; the future yields an Outcome once it is safe (raises BackPressure when the
        device must retry later). `received` (wall clock): when it came from the device, if before now."""
        if self._closed:
            raise BackPressure(f"{self.device_id}: session closing", retry_after=CLOSING_RETRY)
        late = received is not None
        received = time.time() if received is None else received
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if (
            not late
            and len(messages) == 1
            and self._direct is None
            and self._retry is None
            and not self._working
            and self._outbox_empty
            and (self._queue is None or self._queue.empty())
            and self._publish_direct(messages[0], done, received)
        ):
            return done
        # A message without the device's own time that waited for the session, or waits in the outbox, goes
        # out with the time it was received (iothub-creation-time-utc), not the time the hub gets it.
        messages = [
            _stamped(message, received) if late else dataclasses.replace(message, received=received)
            for message in messages
        ]
        try:
            self._enqueue((messages, done))
        except asyncio.QueueFull:
            self.bridge.metrics.errors.labels(kind="backpressure").inc()
            raise BackPressure(f"{self.device_id}: {QUEUE_LIMIT} batches waiting", retry_after=5) from None
        return done

    def on_connected(self) -> None:
        if not self._outbox_empty:
            self.request_replay()

    # -- the direct path ---------------------------------------------------------------------------

    def _publish_direct(
        self, message: TelemetryMessage, done: asyncio.Future[Outcome], received: float
    ) -> bool:
        session = self.session
        if session is None:
            return False
        payload = _JSON.encode(message.values).encode()
        direct = _Direct(
            message,
            payload,
            done,
            self.bridge.clock() + self.bridge.settings.iotc.telemetry_timeout,
            received,
        )
        if not session.publish_telemetry_nowait(
            payload,
            functools.partial(self._direct_acked, direct),
            component=message.component,
            creation_time=message.time,
        ):
            return False
        self._direct = direct
        self.bridge.watch_direct(self, direct.deadline)
        return True

    def _direct_acked(self, direct: _Direct, outcome: BaseException | None) -> None:
        if self._direct is not direct:
            return  # its deadline passed: the worker has taken it over already
        self._end_direct()
        if outcome is None:
            self.bridge.metrics.messages_out.inc()
            if not direct.done.done():
                direct.done.set_result(Outcome.PUBLISHED)  # the hub's PUBACK
        else:
            self._log.info("publish lost (%s): sending it again", outcome)
            self._hand_to_worker(direct, timed_out=False)

    def expire_direct(self, now: float) -> None:
        """Called by the bridge's sweep: a direct publish past its deadline goes to the outbox."""
        direct = self._direct
        if direct is not None and direct.deadline <= now:
            self._log.info("publish not acknowledged in time: keeping it in the outbox")
            self._end_direct()
            self._hand_to_worker(direct, timed_out=True)

    def _end_direct(self) -> None:
        self._direct = None
        waiter, self._direct_finished = self._direct_finished, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.bridge.unwatch_direct(self)

    def _hand_to_worker(self, direct: _Direct, *, timed_out: bool) -> None:
        self._retry = (direct, timed_out)
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes the worker anyway
            self._enqueue(_Wake())

    # -- the worker --------------------------------------------------------------------------------

    def _enqueue(self, item: _Item) -> None:
        """Queue for the worker, starting both on first use; raises asyncio.QueueFull."""
        queue = self._queue
        if queue is None:
            queue = self._queue = asyncio.Queue(QUEUE_LIMIT)
            self._worker = asyncio.create_task(self._deliver_loop(queue), name=f"deliver-{self.device_id}")
        queue.put_nowait(item)

    async def _deliver_loop(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            item = await queue.get()
            self._working = True
            try:
                if self._direct is not None:  # a direct publish in flight goes first
                    self._direct_finished = asyncio.get_running_loop().create_future()
                    await self._direct_finished
                await self._take_retry()
                if isinstance(item, _Replay):
                    await self._replay_safely()
                elif not isinstance(item, _Wake):
                    messages, done = item
                    await self._settle(done, self._deliver_all(messages))
            finally:
                self._working = False
            if queue.empty() and self._retry is None:
                # Back to the direct path: let the pair go (the next fallback starts a new one).
                self._queue = None
                self._worker = None
                return

    async def _take_retry(self) -> None:
        retry, self._retry = self._retry, None
        if retry is None:
            return
        direct, timed_out = retry
        message = dataclasses.replace(direct.message, received=direct.received)
        if timed_out:
            await self._settle(direct.done, self._keep(direct.payload, message))
        else:
            await self._settle(direct.done, self._deliver_one(message))

    async def _settle(self, done: asyncio.Future[Outcome], work: Awaitable[Outcome]) -> None:
        """The worker's one way to complete a promise: the Outcome its work proved, or a refusal."""
        try:
            outcome = await work
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # One batch fails (the device gets 5.03 and retries); the worker lives on for the next ones.
            if isinstance(error, StoreError) and not isinstance(error, OutboxFullError):
                self._log.error("telemetry not kept: %s", error)
                self.bridge.metrics.errors.labels(kind="store").inc()
                error = BackPressure(f"store failure: {error}", retry_after=5)
            elif not isinstance(error, BackPressure):
                self._log.exception("telemetry delivery failed")
                self.bridge.metrics.errors.labels(kind="bridge").inc()
            _refuse(done, error)
            return
        if not done.done():
            done.set_result(outcome)

    async def _deliver_all(self, messages: Sequence[TelemetryMessage]) -> Outcome:
        outcome = Outcome.PUBLISHED
        for message in messages:
            if await self._deliver_one(message) is Outcome.KEPT:
                outcome = Outcome.KEPT
        return outcome

    async def _deliver_one(self, message: TelemetryMessage) -> Outcome:
        payload = _JSON.encode(message.values).encode()
        session = self.session
        if self._outbox_empty and session is not None and session.is_connected:
            try:
                await session.send_telemetry(
                    payload,
                    component=message.component,
                    creation_time=message.time,
                    timeout=self.bridge.settings.iotc.telemetry_timeout,
                )
            except (TimeoutError, HubError) as error:
                self._log.info("publish not acknowledged (%s): keeping it in the outbox", error)
            else:
                self.bridge.metrics.messages_out.inc()
                return Outcome.PUBLISHED  # send_telemetry returns only on the PUBACK
        return await self._keep(payload, message)

    async def _keep(self, payload: bytes, message: TelemetryMessage) -> Outcome:
        try:
            moment = message.received if message.time is None else message.time.timestamp()
            await self.bridge.store.outbox_append(
                self.device_id, payload, component=message.component, creation_time=moment
            )
        except OutboxFullError as error:
            self.bridge.metrics.errors.labels(kind="outbox_full").inc()
            raise BackPressure(str(error), retry_after=int(error.retry_after)) from None
        self._outbox_empty = False
        self.bridge.metrics.outboxed.inc()
        session = self.session
        if session is not None and session.is_connected:
            self.request_replay()  # the hub answered late: try again soon
        return Outcome.KEPT  # outbox_append returns once the row is committed (synchronous=FULL)

    # -- the outbox replay -------------------------------------------------------------------------

    def _replay_later(self, delay: float) -> None:
        if self._closed:
            return
        if self._replay_timer is not None:
            self._replay_timer.cancel()
        self._replay_timer = asyncio.get_running_loop().call_later(delay, self.request_replay)

    def request_replay(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._enqueue(_Replay())

    async def _replay_safely(self) -> None:
        try:
            await self._replay()
        except Exception as error:  # the worker must outlive a failed replay, and the replay must go on
            self._log.warning("outbox replay failed (%s): again in %.0f s", error, STORE_RETRY)
            self.bridge.metrics.errors.labels(kind="store").inc()
            self._replay_later(STORE_RETRY)

    async def _replay(self) -> None:
        session = self.session
        store = self.bridge.store
        while session is not None and session.is_connected:
            if not await self._forget_unremoved():
                return
            batch = await store.outbox_peek(self.device_id, REPLAY_BATCH)
            if not batch:
                self._outbox_empty = True
                return
            try:
                for message in batch:
                    moment = (
                        None
                        if message.creation_time is None
                        else datetime.fromtimestamp(message.creation_time, UTC)
                    )
                    await session.send_telemetry(
                        message.payload,
                        component=message.component,
                        creation_time=moment,
                        custom=message.properties or None,
                        timeout=self.bridge.settings.iotc.telemetry_timeout,
                    )
                    self._unremoved.append(message.sequence)
                    self.bridge.metrics.replayed.inc()
                    self.bridge.metrics.messages_out.inc()
            except (TimeoutError, HubError) as error:
                # Connected but not acknowledged (a slow hub): try again later even if the device sends
                # nothing new and the connection stays up; a reconnect replays too.
                delay = 2 * self.bridge.settings.iotc.telemetry_timeout
                self._log.info("outbox replay paused (%s): again in %.0f s", error, delay)
                if await self._forget_unremoved():
                    self._replay_later(delay)
                return
            self._log.info("replayed %d messages from the outbox", len(batch))

    async def _forget_unremoved(self) -> bool:
        """Remove what was replayed from the outbox; False (and a retry scheduled) if the store refuses.
        Nothing is sent again before this succeeds, so a failing removal costs no duplicate."""
        if not self._unremoved:
            return True
        try:
            await self.bridge.store.outbox_remove(self._unremoved)
        except Exception as error:
            self._log.warning(
                "%d replayed messages not removed from the outbox (%s): again in %.0f s",
                len(self._unremoved),
                error,
                STORE_RETRY,
            )
            self.bridge.metrics.errors.labels(kind="store").inc()
            self._replay_later(STORE_RETRY)
            return False
        self._unremoved = []
        return True
