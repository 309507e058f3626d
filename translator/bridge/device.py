"""One device's life in the bridge: its life cycle and its telemetry (mapped here, delivered with the outbox
by `delivery.TelemetryDelivery`); set-up (`setup.RegistrationSetUp`), desired-property sync
(`desired.DesiredSync`) and commands (`commands.CommandRunner`) are collaborators that get only what they
use (`services`)."""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from translator.bridge.commands import CommandRunner
from translator.bridge.delivery import TelemetryDelivery
from translator.bridge.desired import DesiredSync
from translator.bridge.services import DeviceServices
from translator.bridge.setup import RegistrationSetUp
from translator.coap import (
    BackPressure,
    Delivery,
    NamedRecord,
    Outcome,
    Registration,
    TelemetryRecord,
)
from translator.codec import Codec, DeviceMapper, TelemetryMessage
from translator.codec.changes import ChangeFilter, Selection
from translator.codec.coverage import untranslated
from translator.codec.transforms import IngressRun, Transforms
from translator.iotc.client.ephemeral import EphemeralSession
from translator.iotc.client.session import DeviceSession, SessionCallbacks
from translator.iotc.protocol.errors import HubError
from translator.iotc.protocol.twin import merge_patches, reported_patch
from translator.lwm2m import Record

log = logging.getLogger(__name__)

CODEC_PENDING_RETRY = 2  # Max-Age for records of a device whose codec is not known yet


class DeviceLife:
    def __init__(
        self,
        services: DeviceServices,
        device_id: str,
        codec: Codec | None,
        *,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """`attributes`: the device's extra devices-CSV columns (its codec's enrichment)."""
        self._services = services
        self.device_id = device_id
        self.codec = codec
        self.attributes = dict(attributes or {})
        self._http_ingress: IngressRun | None = None  # the HTTP face's transforms, run for this device
        self.mapper = self._mapper(codec)
        self.registration: Registration | None = None
        self.session: DeviceSession | EphemeralSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changes = ChangeFilter(codec) if codec is not None else None
        self._log = logging.LoggerAdapter(log, {"device_id": device_id})
        self.telemetry = TelemetryDelivery(
            device_id,
            store=services.store,
            metrics=services.metrics,
            sweep=services.sweep,
            telemetry_timeout=services.telemetry_timeout,
            clock=services.deadlines.clock,
            log=self._log,
            owns=functools.partial(services.still_mine, device_id),
        )
        downlinks, deadlines = services.downlinks, services.deadlines
        self._setup = RegistrationSetUp(
            self,
            downlinks=downlinks,
            deadlines=deadlines,
            limiter=services.setup_limiter,
            deliver=functools.partial(self.deliver, changes_only=True),
            spawn=self.spawn,
        )
        self.desired = DesiredSync(
            self,
            downlinks=downlinks,
            deadlines=deadlines,
            report=self.report,
            spawn=self.spawn,
            log=self._log,
            owns=functools.partial(services.still_mine, device_id),
        )
        self.commands = CommandRunner(
            self,
            downlinks=downlinks,
            deadlines=deadlines,
            store=services.store,
            metrics=services.metrics,
            spawn=self.spawn,
            log=self._log,
            owns=functools.partial(services.still_mine, device_id),
        )

    def adopt_codec(self, codec: Codec | None) -> None:
        self.codec = codec
        if codec is not None and self.mapper is not None:
            self.mapper.rebind(codec)  # keeps what it knows of desired versions and acknowledgements
        else:
            self.mapper = self._mapper(codec)
        self._changes = ChangeFilter(codec) if codec is not None else None
        self.report_enrichment()

    def _mapper(self, codec: Codec | None) -> DeviceMapper | None:
        if codec is None:
            return None
        return DeviceMapper(codec, device_id=self.device_id, attributes=self.attributes)

    def report_enrichment(self) -> None:
        """The codec's enrichment properties (read-only, from the devices CSV), when connected: at every
        connection, as the twin's reported section may have been reset, and when the codec changes."""
        runs = [
            r for r in (self.mapper.ingress if self.mapper else None, self._http_ingress) if r is not None
        ]
        found: dict[str | None, dict[str, str]] = {}
        for run in runs:
            for component, values in run.properties().items():
                found.setdefault(component, {}).update(values)
        patch = merge_patches([reported_patch(v, c) for c, v in found.items()]) if found else None
        session = self.session
        if patch and session is not None and session.is_connected:
            self.spawn(self.report(patch), "enrichment")

    def transformed(self, transforms: Transforms, measurements: dict[str, Any]) -> dict[str, Any]:
        """Measurements of the HTTP face through its transforms, with this device's state (the last value
        of each input, skip counts) and enrichment; its enrichment properties are reported once it runs."""
        run = self._http_ingress
        if run is None or run.transforms is not transforms:
            run = self._http_ingress = IngressRun(
                transforms, attributes=self.attributes, device_id=self.device_id, logger=log
            )
            self.report_enrichment()
        return run.message(None, dict(measurements))

    @property
    def endpoint(self) -> str:
        return self.registration.endpoint if self.registration is not None else self.device_id

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self, session: DeviceSession | EphemeralSession) -> None:
        self.session = session
        if isinstance(session, EphemeralSession):
            session.on_ready = self.telemetry.on_connected  # its backoff is over: replay the outbox
        await self.telemetry.start(session)
        await self.commands.resume_offline()
        self.report_enrichment()  # connected before it had its session: on_connected could not

    def registered(self, registration: Registration) -> None:
        """A (re-)registration: its observations are new; set up, or resume when nothing changed."""
        self.registration = registration
        if self.codec is not None:
            missing = untranslated(self.codec, registration.objects.instances, self._services.registry)
            if missing:
                self._log.info("not translated: %s", missing.describe())
        self._setup.start(registration)

    def restored(self, registration: Registration) -> None:
        """Taken back after a restart with its observations: they run on, nothing to ask the device."""
        self.registration = registration
        self._setup.mark_done(registration)

    async def close(self) -> None:
        await self.telemetry.close()
        if isinstance(self.session, EphemeralSession):
            await self.session.close()  # the life owns it (a persistent session is the pool's)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
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
            self._services.metrics.errors.labels(kind="bridge").inc()

    # -- telemetry --------------------------------------------------------------------------------

    def deliver(
        self,
        records: Sequence[TelemetryRecord],
        received: float | None = None,
        *,
        changes_only: bool = False,
    ) -> Delivery:
        """Map records and hand their telemetry to the delivery; the answer is the promise behind the
        device's acknowledgement (translator.coap.sink): an Outcome, now or once the data is safe.
        `received` (wall clock): when they came from the device, when that was before now (they waited for
        the device's session). `changes_only` (notifications, set-up Reads): values the device repeats
        unchanged are not forwarded again (`translator.codec.changes`) — a deliberate "nothing to send"."""
        lwm2m = [record for record in records if isinstance(record, Record)]
        named = [record for record in records if isinstance(record, NamedRecord)]
        changes = self._changes if changes_only else None
        selection = None
        if changes is not None and lwm2m:
            selection = changes.select(lwm2m, self._services.deadlines.clock())
            lwm2m = list(selection.records)
        delivered = self._deliver_mapped(lwm2m, named, received)
        if changes is not None and selection is not None:
            _remember(changes, selection, delivered)
        return delivered

    def _deliver_mapped(
        self, lwm2m: Sequence[Record], named: Sequence[NamedRecord], received: float | None
    ) -> Delivery:
        messages: list[TelemetryMessage] = []
        reported: Awaitable[Outcome] | None = None
        if lwm2m:
            if self.mapper is None:
                # Never "nothing to send" by accident: without a codec nothing can say what these records
                # are, so the device keeps them and retries (the bridge gives a registered device its codec
                # before it gets here).
                raise BackPressure(
                    f"{self.device_id}: no codec yet (not registered since the start)",
                    retry_after=CODEC_PENDING_RETRY,
                )
            uplink = self.mapper.uplink(lwm2m)
            messages.extend(uplink.telemetry)
            if uplink.reported:
                # A task, not a bare coroutine: the patch goes out even when nobody awaits the answer (the
                # static properties read at set-up, non-confirmable messages).
                reported = asyncio.ensure_future(self._report_strictly(uplink.reported))
                self._tasks.add(reported)
                reported.add_done_callback(_quietly_done(self._tasks))
        for record in named:
            moment = None if record.time is None else datetime.fromtimestamp(record.time, UTC)
            messages.append(TelemetryMessage(None, {record.name: _json_value(record.value)}, moment))
        if not messages:
            # Deliberately nothing to send: the codec maps these records to no telemetry (and the reported
            # properties, if any, are acknowledged by the hub first).
            return reported if reported is not None else Outcome.NOTHING
        sent = self.telemetry.send(messages, received)
        if reported is None:
            return sent
        both = asyncio.ensure_future(_both(sent, reported))  # runs whether or not the caller awaits it
        both.add_done_callback(_retrieved)
        return both

    async def _report_strictly(self, patch: dict[str, Any]) -> Outcome:
        """A reported-properties patch that is part of a device's data: acknowledged by the hub, or the
        device is told to retry (5.03) — unlike `report`, which only logs a lost patch."""
        session = self.session
        if session is None:
            raise BackPressure(f"{self.device_id}: no session yet", retry_after=CODEC_PENDING_RETRY)
        try:
            await session.patch_reported(patch, timeout=self._services.telemetry_timeout)
        except (TimeoutError, HubError) as error:
            self._log.warning("reported patch not acknowledged: %s", error)
            self._services.metrics.errors.labels(kind="reported").inc()
            raise BackPressure(f"reported properties not acknowledged: {error}", retry_after=5) from None
        return Outcome.PUBLISHED

    async def report(self, patch: dict[str, Any]) -> None:
        session = self.session
        if session is None:
            return
        try:
            await session.patch_reported(patch, timeout=60)
        except (TimeoutError, HubError) as error:
            self._log.warning("reported patch lost: %s", error)
            self._services.metrics.errors.labels(kind="reported").inc()

    # -- session callbacks ------------------------------------------------------------------------

    def callbacks(self) -> SessionCallbacks:
        return SessionCallbacks(
            on_desired=self.desired.on_desired,
            on_method=self.commands.on_method,
            on_c2d=self.commands.on_c2d,
            on_connected=self.on_connected,
        )

    async def on_connected(self, session: DeviceSession) -> None:
        """After every (re)connect: replay the outbox, then settle desired properties not acknowledged yet."""
        self.telemetry.on_connected()
        self.report_enrichment()
        await self.desired.reconcile(session)


def _quietly_done(tasks: set[asyncio.Task[Any]]) -> Any:
    """Done-callback of a task whose failure its awaiter (if any) answers and `_report_strictly` logged."""

    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done


def _remember(changes: ChangeFilter, selection: Selection, delivered: Delivery) -> None:
    """Values count as forwarded at once (the observation's first answer right after the set-up's Read is a
    repeat, even while the Read's publish waits for its PUBACK), and are forgotten again if their delivery
    fails: the device retransmits a refused notification, which must then not look like a repeat and be
    acknowledged as nothing to send."""
    changes.commit(selection)
    if isinstance(delivered, asyncio.Future):

        def refused(future: asyncio.Future[Any]) -> None:
            if future.cancelled() or future.exception() is not None:
                changes.forget(selection)

        delivered.add_done_callback(refused)


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # answered by whoever awaits it; nobody may, and that is no reason for a warning


async def _both(sent: Awaitable[Outcome], reported: Awaitable[Outcome]) -> Outcome:
    """Telemetry and reported properties of one message: acknowledged when both are safe."""
    outcomes = await asyncio.gather(sent, reported)
    return Outcome.KEPT if Outcome.KEPT in outcomes else Outcome.PUBLISHED


def _json_value(value: Any) -> Any:
    """Plain-CBOR sensors may send byte strings, which JSON carries as base64."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value
