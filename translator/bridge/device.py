"""One device's life in the bridge: session, static properties, observations, telemetry delivery with the
outbox, writable properties, commands and offline commands.

Telemetry of a device goes through one queue and one worker, so messages reach IoT Central in the order the
device sent them, whether directly, or kept in the outbox while the hub is away and replayed (before anything
newer) when the session is back.

The common case skips the worker: a single message arriving while nothing of the device is queued, in flight
or in the outbox is published straight from the datagram handler and settled by the PUBACK callback (no task
switch, no coroutine per message). It is the only message of the device in flight then; everything after it
waits in the queue, and if it fails the worker takes it first (again, or into the outbox once its deadline
passed, which the bridge's sweep watches), so the order holds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from translator.bridge.setup import RegistrationSetUp
from translator.coap import (
    BackPressure,
    DeadlineExpiredError,
    DeviceResponseError,
    DeviceTimeoutError,
    DownlinkError,
    NamedRecord,
    Registration,
    TelemetryRecord,
)
from translator.coap.errors import dotted
from translator.codec import Codec, CommandError, DeviceMapper, Operation, TelemetryMessage
from translator.codec.changes import ChangeFilter
from translator.iotc.errors import HubError
from translator.iotc.methods import Invocation
from translator.iotc.property_bag import PropertyBag
from translator.iotc.session import DeviceSession
from translator.iotc.twin import AckCode, DesiredProperty, pending_acknowledgements
from translator.lwm2m import Record
from translator.store import OutboxFullError, PendingCommand, StoreError

if TYPE_CHECKING:
    from translator.bridge.bridge import Bridge

log = logging.getLogger(__name__)

_JSON = json.JSONEncoder(separators=(",", ":"))  # json.dumps with options builds an encoder per call
QUEUE_LIMIT = 1000  # telemetry batches waiting per device before the device is told to back off
REPLAY_BATCH = 50
OFFLINE_COMMAND_TTL = 24 * 3600.0  # IoT Central's default for queued commands


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
    done: asyncio.Future[None]
    deadline: float


_Item = tuple[Sequence[TelemetryMessage], asyncio.Future[None] | None] | _Replay | _Wake


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


class DeviceLife:
    def __init__(self, bridge: Bridge, device_id: str, codec: Codec | None) -> None:
        self.bridge = bridge
        self.device_id = device_id
        self.codec = codec
        self.mapper = DeviceMapper(codec, device_id=device_id) if codec is not None else None
        self.registration: Registration | None = None
        self.session: DeviceSession | None = None
        # The queue and its worker exist only while a device needs them (a message while another is in
        # flight, the outbox, a replay) and end when the queue is empty: most of the time a device takes
        # the direct path, and the pair costs ~5 KB per device.
        self._queue: asyncio.Queue[_Item] | None = None
        self._outbox_empty = True
        self._direct: _Direct | None = None
        self._direct_finished: asyncio.Future[None] | None = None  # what the worker awaits, when it must
        self._retry: tuple[_Direct, bool] | None = None  # a failed direct publish; True: its deadline passed
        self._working = False
        self._replay_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._changes = ChangeFilter(codec) if codec is not None else None
        self._setup = RegistrationSetUp(self)
        self._log = logging.LoggerAdapter(log, {"device_id": device_id})

    def adopt_codec(self, codec: Codec | None) -> None:
        self.codec = codec
        self.mapper = DeviceMapper(codec, device_id=self.device_id) if codec is not None else None
        self._changes = ChangeFilter(codec) if codec is not None else None

    @property
    def endpoint(self) -> str:
        return self.registration.endpoint if self.registration is not None else self.device_id

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self, session: DeviceSession) -> None:
        self.session = session
        self._outbox_empty = await self.bridge.store.outbox_depth(self.device_id) == 0
        for command in await self.bridge.store.commands(self.device_id):
            self.spawn(self._run_offline(command), f"offline-{command.name}")

    def registered(self, registration: Registration) -> None:
        """A (re-)registration: its observations are new; set up, or resume when nothing changed."""
        self.registration = registration
        self._setup.start(registration)

    async def close(self) -> None:
        if self._replay_timer is not None:
            self._replay_timer.cancel()
        direct = self._direct
        if direct is not None:
            self._end_direct()
            if not direct.done.done():
                direct.done.set_exception(BackPressure(f"{self.device_id}: session closing", retry_after=5))
        for task in [*self._tasks, *(t for t in (self._worker,) if t is not None)]:
            task.cancel()
        await asyncio.gather(
            *self._tasks, *(t for t in (self._worker,) if t is not None), return_exceptions=True
        )
        self._tasks.clear()

    def spawn(self, work: Awaitable[Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        task.set_name(f"{self.device_id}-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            self._log.error("%s failed: %s", task.get_name(), error, exc_info=error)
            self.bridge.metrics.errors.labels(kind="bridge").inc()

    def within(self, deadline: float) -> float:
        """Seconds left until `deadline` (on the bridge's clock): the CoAP face's downlinks take `deadline=`
        as how long a request may wait for a sleeping device, not as a point in time."""
        return max(0.0, deadline - self.bridge.clock())

    # -- telemetry --------------------------------------------------------------------------------

    def deliver(
        self, records: Sequence[TelemetryRecord], *, changes_only: bool = False
    ) -> Awaitable[None] | None:
        """Map records and queue their telemetry; the awaitable completes once it is safe (acknowledged by
        the hub, or in the outbox). `changes_only` (notifications, set-up Reads): values the device repeats
        unchanged are not forwarded again (`translator.codec.changes`)."""
        lwm2m = [record for record in records if isinstance(record, Record)]
        named = [record for record in records if isinstance(record, NamedRecord)]
        changes = self._changes if changes_only else None
        selection = None
        if changes is not None and lwm2m:
            selection = changes.select(lwm2m, self.bridge.clock())
            lwm2m = list(selection.records)
        delivered = self._deliver_mapped(lwm2m, named)
        if changes is not None and selection is not None:
            changes.commit(selection)  # not reached on back-pressure: the device sends them again
        return delivered

    def _deliver_mapped(
        self, lwm2m: Sequence[Record], named: Sequence[NamedRecord]
    ) -> Awaitable[None] | None:
        messages: list[TelemetryMessage] = []
        if lwm2m and self.mapper is not None:
            uplink = self.mapper.uplink(lwm2m)
            messages.extend(uplink.telemetry)
            if uplink.reported:
                self.spawn(self.report(uplink.reported), "report")
        for record in named:
            moment = None if record.time is None else datetime.fromtimestamp(record.time, UTC)
            messages.append(TelemetryMessage(None, {record.name: _json_value(record.value)}, moment))
        if not messages:
            return None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if (
            len(messages) == 1
            and self._direct is None
            and self._retry is None
            and not self._working
            and self._outbox_empty
            and (self._queue is None or self._queue.empty())
            and self._publish_direct(messages[0], done)
        ):
            return done
        try:
            self._enqueue((messages, done))
        except asyncio.QueueFull:
            self.bridge.metrics.errors.labels(kind="backpressure").inc()
            raise BackPressure(f"{self.device_id}: {QUEUE_LIMIT} batches waiting", retry_after=5) from None
        return done

    # The direct path ------------------------------------------------------------------------------

    def _publish_direct(self, message: TelemetryMessage, done: asyncio.Future[None]) -> bool:
        session = self.session
        if session is None:
            return False
        payload = _JSON.encode(message.values).encode()
        direct = _Direct(
            message, payload, done, self.bridge.clock() + self.bridge.settings.iotc.telemetry_timeout
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
                direct.done.set_result(None)
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

    # The worker -----------------------------------------------------------------------------------

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
        if timed_out:
            await self._settle(direct.done, self._to_outbox(direct.payload, direct.message))
        else:
            await self._settle(direct.done, self._deliver_one(direct.message))

    async def _replay_safely(self) -> None:
        try:
            await self._replay()
        except Exception:  # the worker must outlive a failed replay; the next connect retries it
            self._log.exception("outbox replay failed")
            self.bridge.metrics.errors.labels(kind="store").inc()

    async def _deliver_all(self, messages: Sequence[TelemetryMessage]) -> None:
        for message in messages:
            await self._deliver_one(message)

    async def _settle(self, done: asyncio.Future[None] | None, work: Awaitable[None]) -> None:
        try:
            await work
        except (BackPressure, StoreError) as error:
            # One batch fails (the device gets 5.03 and retries); the worker lives on for the next ones.
            if isinstance(error, StoreError):
                self._log.error("telemetry not kept: %s", error)
                self.bridge.metrics.errors.labels(kind="store").inc()
                error = BackPressure(f"store failure: {error}", retry_after=5)
            if done is not None and not done.done():
                done.set_exception(error)
            return
        if done is not None and not done.done():
            done.set_result(None)

    async def _deliver_one(self, message: TelemetryMessage) -> None:
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
                return
        await self._to_outbox(payload, message)

    async def _to_outbox(self, payload: bytes, message: TelemetryMessage) -> None:
        try:
            await self.bridge.store.outbox_append(
                self.device_id, payload, component=message.component, creation_time=_epoch(message.time)
            )
        except OutboxFullError as error:
            self.bridge.metrics.errors.labels(kind="outbox_full").inc()
            raise BackPressure(str(error), retry_after=int(error.retry_after)) from None
        self._outbox_empty = False
        self.bridge.metrics.outboxed.inc()
        session = self.session
        if session is not None and session.is_connected:
            self.request_replay()  # the hub answered late: try again soon

    def _replay_later(self, delay: float) -> None:
        if self._replay_timer is not None:
            self._replay_timer.cancel()
        self._replay_timer = asyncio.get_running_loop().call_later(delay, self.request_replay)

    def request_replay(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._enqueue(_Replay())

    async def _replay(self) -> None:
        session = self.session
        store = self.bridge.store
        while session is not None and session.is_connected:
            batch = await store.outbox_peek(self.device_id, REPLAY_BATCH)
            if not batch:
                self._outbox_empty = True
                return
            sent: list[int] = []
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
                    sent.append(message.sequence)
            except (TimeoutError, HubError) as error:
                # Connected but not acknowledged (a slow hub): try again later even if the device sends
                # nothing new and the connection stays up; a reconnect replays too.
                delay = 2 * self.bridge.settings.iotc.telemetry_timeout
                self._log.info("outbox replay paused (%s): again in %.0f s", error, delay)
                self._replay_later(delay)
                return
            finally:
                await store.outbox_remove(sent)
                self.bridge.metrics.replayed.inc(len(sent))
                self.bridge.metrics.messages_out.inc(len(sent))
            self._log.info("replayed %d messages from the outbox", len(sent))

    async def report(self, patch: dict[str, Any]) -> None:
        session = self.session
        if session is None:
            return
        try:
            await session.patch_reported(patch, timeout=60)
        except (TimeoutError, HubError) as error:
            self._log.warning("reported patch lost: %s", error)
            self.bridge.metrics.errors.labels(kind="reported").inc()

    # -- session callbacks: twin, desired, commands --------------------------------------------------

    async def on_connected(self, session: DeviceSession) -> None:
        """After every (re)connect: replay the outbox, then settle desired properties not acknowledged yet."""
        if not self._outbox_empty:
            self.request_replay()
        twin = await session.get_twin()
        components = self.codec.component_names if self.codec is not None else frozenset()
        pending = pending_acknowledgements(twin, components)
        if pending:
            self._log.info("reconciling %d desired properties", len(pending))
            await self._apply_desired(pending)

    def on_desired(self, properties: list[DesiredProperty]) -> None:
        self.spawn(self._apply_desired(properties), "desired")

    async def _apply_desired(self, properties: list[DesiredProperty]) -> None:
        if self.mapper is None:
            for prop in properties:
                await self.report(
                    prop.acknowledge(AckCode.REJECTED, "this device has no writable properties")
                )
            return
        plan = self.mapper.desired(properties)
        for acknowledgement in plan.acknowledgements:
            await self.report(acknowledgement)
        registration = self.registration
        for pending in plan.writes:
            if registration is not None and registration.queue_mode:
                await self.report(
                    pending.desired.acknowledge(AckCode.IN_PROGRESS, "waiting for the device to wake")
                )
            try:
                await self.bridge.coap.devices.write(
                    self.endpoint,
                    pending.write.path,
                    pending.write.records,
                    deadline=self.within(self.bridge.downlink_deadline()),
                )
            except DeviceResponseError as error:
                await self.report(pending.failed(str(error), AckCode.REJECTED))
            except DownlinkError as error:
                await self.report(pending.failed(str(error)))
            else:
                await self.report(pending.completed())

    async def on_method(self, invocation: Invocation) -> tuple[int, Any]:
        started = time.monotonic()
        status, payload = await self.run_command(
            str(invocation.method), invocation.payload, self.bridge.command_deadline()
        )
        outcome = "ok" if 200 <= status < 300 else "timeout" if status == 504 else "error"
        self.bridge.metrics.commands.labels(outcome=outcome).observe(time.monotonic() - started)
        return status, payload

    async def run_command(self, name: str, payload: Any, deadline: float) -> tuple[int, Any]:
        if self.mapper is None:
            return 404, {"error": f"this device has no commands ({name})"}
        try:
            call = self.mapper.command(name, payload)
        except CommandError as error:
            return error.status, {"error": str(error)}
        operation = call.operation
        devices = self.bridge.coap.devices
        try:
            wait = self.within(deadline)
            if operation.operation is Operation.EXECUTE:
                await devices.execute(self.endpoint, operation.path, operation.arguments, deadline=wait)
                result = call.succeeded()
            elif operation.operation is Operation.READ:
                result = call.succeeded(await devices.read(self.endpoint, operation.path, deadline=wait))
            else:
                await devices.write(self.endpoint, operation.path, operation.records, deadline=wait)
                result = call.succeeded()
        except (DeadlineExpiredError, DeviceTimeoutError) as error:
            result = call.timed_out(str(error))
        except DeviceResponseError as error:
            result = call.failed(dotted(error.code), str(error))
        except DownlinkError as error:
            result = call.failed("5.03", str(error))
        self._log.info("command %s answered %d", name, result.status)
        return int(result.status), result.payload

    def on_c2d(self, properties: PropertyBag, payload: bytes) -> None:
        """An offline command from IoT Central: kept in the store and run when the device can be reached."""
        name = properties.method_name
        if not name:
            self._log.warning("cloud-to-device message without method-name ignored")
            return
        try:
            request = json.loads(payload) if payload else None
        except ValueError:
            request = payload.decode(errors="replace")
        now = time.time()
        command = PendingCommand(
            properties.message_id or str(uuid.uuid4()),
            self.device_id,
            name,
            request,
            now + OFFLINE_COMMAND_TTL,
            now,
        )
        self.spawn(self._keep_and_run(command), f"offline-{name}")

    async def _keep_and_run(self, command: PendingCommand) -> None:
        await self.bridge.store.add_command(command)
        await self._run_offline(command)

    async def _run_offline(self, command: PendingCommand) -> None:
        remaining = command.deadline - time.time()
        if remaining > 0:
            deadline = self.bridge.clock() + remaining
            status, _ = await self.run_command(command.name, command.payload, deadline)
            self._log.info("offline command %s finished with %d", command.name, status)
        else:
            self._log.warning("offline command %s expired before the device could take it", command.name)
        await self.bridge.store.remove_command(command.command_id)


def _json_value(value: Any) -> Any:
    """Plain-CBOR sensors may send byte strings, which JSON carries as base64."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value
