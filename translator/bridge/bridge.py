"""The bridge: the CoAP face's telemetry sink and the owner of every device's life.

Registration → admission (the CoAP face) → credentials and codec → session (cached DPS assignment) →
static properties → observations → telemetry; desired properties, commands and offline commands flow back.
De-registration or expiry closes the session.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from translator.bridge.codecs import CodecCatalog
from translator.bridge.device import DeviceLife
from translator.bridge.ephemeral import Sessions, connection_of
from translator.bridge.journal import RegistrationJournal
from translator.bridge.pacing import SetupLimiter
from translator.bridge.services import Deadlines, DeviceServices
from translator.bridge.sweep import DirectSweep
from translator.cluster.claims import claimed
from translator.cluster.handover import HandOver
from translator.cluster.ownership import DeviceClaims, Trigger
from translator.coap import (
    Delivery,
    DeregisterReason,
    DeviceIdentity,
    Forbidden,
    Outcome,
    Registration,
    TelemetryRecord,
    TelemetrySource,
    endpoint_for,
)
from translator.coap.snapshot import RegistrationSnapshot, plan_restore
from translator.codec import Codec
from translator.codec.spec import Connection
from translator.iotc.client.credentials import (
    CommonNameTooLongError,
    Credential,
    SymmetricKey,
    X509Identity,
    mint_device_certificate,
)
from translator.iotc.client.pool import DeviceSpec, SessionPool
from translator.iotc.client.session import SessionState
from translator.ops.logs import device_log
from translator.ops.metrics import Metrics
from translator.settings import Settings
from translator.store import DeviceEntry, Store, StoreError

if TYPE_CHECKING:
    from translator.coap import Lwm2mServer

log = logging.getLogger(__name__)

HEALTH_NAMES = 100  # device ids /healthz lists at most per state


class NoCredentialsError(Forbidden):
    """Nothing says how this device authenticates (no group key, no enrollment CA, no imported key), or its
    id cannot be a certificate CN. A `Forbidden`, so the device's CoAP request is answered 4.03 with why."""


class Bridge:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        pool: SessionPool,
        catalog: CodecCatalog,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        ownership: DeviceClaims | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ownership = ownership  # None: this translator is alone (SQLite), every device is its own
        self._handover = HandOver(ownership, self._let_go) if ownership is not None else None
        self.pool = pool
        self.sessions = Sessions(pool, settings)
        self.catalog = catalog
        self.metrics = metrics
        self.clock = clock
        self._coap: Lwm2mServer | None = None
        self._services: DeviceServices | None = None
        self.lives: dict[str, DeviceLife] = {}
        self._starting: dict[str, asyncio.Task[DeviceLife | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sweep = DirectSweep(clock)
        self.setup_limiter = SetupLimiter(settings.coap.setup_concurrency, settings.coap.setup_rate)
        self.journal = RegistrationJournal(ownership or store, self._snapshot)
        # In a cluster: records where a device's Register/Update arrived (the relay's seen-at index).
        self.seen_at: Callable[[Registration], Awaitable[None]] | None = None
        self._restored: list[RegistrationSnapshot] = []
        gateway = settings.gateway
        self._gateway = gateway.device_id if gateway.enabled else None  # devices register downstream of it
        self._messages_in = {
            source: metrics.messages_in.labels(source=source.value) for source in TelemetrySource
        }
        metrics.add_callback(self._gauges, {"iotc_translator_sessions": ["state"]})

    # -- wiring -----------------------------------------------------------------------------------

    def attach(self, coap: Lwm2mServer) -> None:
        self._coap = coap
        settings = self.settings
        self._services = DeviceServices(
            store=self.store,
            metrics=self.metrics,
            downlinks=coap.devices,
            deadlines=Deadlines(self.clock, settings.coap.queue_deadline, settings.iotc.command_deadline),
            setup_limiter=self.setup_limiter,
            sweep=self.sweep,
            registry=self.catalog.registry,
            telemetry_timeout=settings.iotc.telemetry_timeout,
            still_mine=self.still_mine,
        )

    def _snapshot(self, endpoint: str) -> RegistrationSnapshot | None:
        return self.coap.snapshot(endpoint)

    @property
    def services(self) -> DeviceServices:
        """What each device's life is given (see bridge/services.py); there once the CoAP face is attached."""
        if self._services is None:
            raise RuntimeError("the bridge has no CoAP server attached")
        return self._services

    @property
    def coap(self) -> Lwm2mServer:
        if self._coap is None:
            raise RuntimeError("the bridge has no CoAP server attached")
        return self._coap

    async def close(self) -> None:
        await self.journal.close()  # normally done already, before the CoAP face stopped
        await self.sweep.close()
        for task in [*self._tasks, *self._starting.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._starting.values(), return_exceptions=True)
        await asyncio.gather(*(life.close() for life in self.lives.values()), return_exceptions=True)
        self.lives.clear()

    def _spawn(self, work: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())
            self.metrics.errors.labels(kind="bridge").inc()

    # -- a device's life --------------------------------------------------------------------------

    async def credential_for(self, device_id: str, entry: DeviceEntry | None) -> Credential:
        iotc = self.settings.iotc
        if entry is not None and entry.certificate and entry.private_key:
            return X509Identity(Path(entry.certificate), Path(entry.private_key))
        if entry is not None and entry.symmetric_key:
            return SymmetricKey(entry.symmetric_key)
        if iotc.group_key:
            return SymmetricKey.from_group(iotc.group_key, device_id)
        if iotc.x509_ca_cert is not None and iotc.x509_ca_key is not None:
            try:
                return await asyncio.to_thread(
                    mint_device_certificate,
                    device_id,
                    iotc.x509_ca_cert,
                    iotc.x509_ca_key,
                    self.settings.state_dir / "certs",
                )
            except CommonNameTooLongError as error:
                raise NoCredentialsError(str(error)) from None
        raise NoCredentialsError(
            f"no credentials for {device_id}: configure iotc.group_key or import the device"
        )

    def codec_for(self, registration: Registration | None, entry: DeviceEntry | None) -> Codec | None:
        return self.catalog.for_device(
            entry.codec if entry is not None else None,
            registration.objects if registration is not None else None,
        )

    async def _start_life(
        self,
        device_id: str,
        registration: Registration | None,
        endpoint: str,
        model_id: str | None = None,
        connection: Connection | None = None,
    ) -> DeviceLife | None:
        entry = await self.store.device_for_endpoint(endpoint)
        # An imported device is known to IoT Central by the id its import gave it, not by its endpoint name.
        cloud_id = entry.device_id if entry is not None else device_id
        codec = self.codec_for(registration, entry)
        credential = await self.credential_for(cloud_id, entry)
        life = DeviceLife(
            self.services, cloud_id, codec, attributes=dict(entry.attributes) if entry is not None else None
        )
        callbacks = life.callbacks()
        if self._handover is not None:  # a node that lost the device does not reconnect it (cluster.md)
            callbacks.before_reconnect = functools.partial(self._handover.before_reconnect, device_id)
        # The operator's import wins over what a device claims (an HTTP request's modelId).
        model_id = (
            (entry.model_id if entry is not None else None)
            or model_id
            or (codec.model_id if codec is not None else None)
        )
        session = await self.sessions.open(
            DeviceSpec(cloud_id, credential, model_id, callbacks, self._gateway),
            connection_of(entry, codec, connection),
            pinned=registration is not None,
        )
        await life.start(session)
        self.lives[device_id] = life
        device_log(log, device_id).info(
            "life started as %s (codec %s)", cloud_id, codec.model_id if codec is not None else "none"
        )
        return life

    async def _life(
        self,
        device_id: str,
        registration: Registration | None,
        endpoint: str,
        model_id: str | None = None,
        connection: Connection | None = None,
    ) -> DeviceLife | None:
        life = self.lives.get(device_id)
        if life is not None:
            return life
        starting = self._starting.get(device_id)
        if starting is None:
            starting = asyncio.create_task(
                self._start_life(device_id, registration, endpoint, model_id, connection),
                name=f"start-{device_id}",
            )
            self._starting[device_id] = starting
            starting.add_done_callback(lambda _task: self._starting.pop(device_id, None))
        return await starting

    async def _registered(self, registration: Registration) -> None:
        # The registration itself reaches the store through the journal (the CoAP face tells it).
        device_id = registration.device_id
        if not await self._claim(device_id, Trigger.REGISTRATION):
            return
        try:
            life = await self._life(device_id, registration, registration.endpoint)
        except NoCredentialsError as error:
            device_log(log, device_id).error("refused, no session: %s", error.reason)
            return
        if life is None:
            return
        await self._adopt_objects(life, registration)
        current = self.coap.registration(registration.endpoint)
        if current is None:
            # De-registered or expired while its life was being set up: end it now (a pinned session for a
            # device that is gone would stay connected for ever).
            await self._end(registration, DeregisterReason.DEREGISTERED)
        elif current.reg_id == registration.reg_id:
            life.registered(current)
        # else: registered again meanwhile; that registration's own task sets the life up.

    async def _claim(self, device_id: str, trigger: Trigger) -> bool:
        """Whether this node may hold the device's session: it owns it, or just claimed it (cluster.md)."""
        if self.ownership is None:
            return True
        try:
            owner = await self.ownership.claim(device_id, trigger)
        except StoreError as error:
            # Redis away: the device's datagrams are here, so its session is too (the epoch is settled on
            # its next Update); a mere orphan waits for Redis.
            device_log(log, device_id).warning("ownership not claimed (%s)", error)
            return trigger is Trigger.REGISTRATION
        if owner is None:
            device_log(log, device_id).info("owned by another node")
        return owner is not None

    def _let_go(self, device_id: str) -> None:
        self._spawn(self._end_life(device_id), f"release-{device_id}")

    async def _end_life(self, device_id: str) -> None:
        life = self.lives.pop(device_id, None)
        if life is not None:
            await life.close()
        await self.pool.close_session(life.device_id if life is not None else device_id)

    async def still_mine(self, device_id: str) -> bool:
        """The fence of a consuming action (outbox replay, command execution): this node still owns the
        device at the epoch it claimed. Raises StoreError when that cannot be known."""
        return self.ownership is None or await self.ownership.still_mine(device_id)

    async def _adopt_objects(self, life: DeviceLife, registration: Registration) -> None:
        if life.codec is None:
            # Started without a registration (resumed for its outbox, or plain CBOR): now it has objects.
            entry = await self.store.device_for_endpoint(registration.endpoint)
            life.adopt_codec(self.codec_for(registration, entry))
        elif (
            life.registration is not None
            and life.registration.objects.instances != registration.objects.instances
        ):
            # Registered again with other objects: the codec follows (a new instance gets its component).
            entry = await self.store.device_for_endpoint(registration.endpoint)
            life.adopt_codec(self.codec_for(registration, entry))
        self.pool.pin(life.device_id)  # its codec may have come with its first records already

    async def restore(self) -> None:
        """Before the CoAP socket opens: registrations kept by the previous run come back into the CoAP face
        (with their observations); those expired meanwhile are deleted. `start_restored` then resumes their
        lives once the face runs."""
        records = await self.store.registrations()
        # On a shared store: this node's devices and orphans; a live node's registrations are its own.
        ours = await claimed(self._claim, (r.device_id for r in records), Trigger.ORPHANED)
        records = [record for record in records if record.device_id in ours]
        plan = plan_restore(
            ((r.endpoint, r.device_id, r.data) for r in records),
            grace=self.settings.coap.grace,
            now=self.clock(),
            wall_now=time.time(),
            unbounded=self.settings.coap.unbounded_lifetime,
        )
        if plan.delete:
            await self.journal.write_now([], plan.delete)
        self._restored = self.coap.restore(plan.restore)
        log.info(
            "restored %d registrations (%d set up already); %d expired or unreadable, deleted",
            len(self._restored),
            sum(1 for s in self._restored if s.settled),
            len(plan.delete),
        )

    def start_restored(self) -> None:
        """Each restored device gets its life back without waiting for it: session (connects paced by the
        pool's connect rate), codec from its object list, and — only when its set-up had not completed
        (stopped in the middle, or a sleeping device not reached yet) — its set-up downlinks. All through
        the set-up limiter, so a restart does not burst."""
        restored, self._restored = self._restored, []
        for snapshot in restored:
            registration = snapshot.registration
            self._spawn(
                self._resume_registration(registration, snapshot.settled),
                f"restore-{registration.device_id}",
            )

    async def _resume_registration(self, registration: Registration, settled: bool) -> None:
        endpoint = registration.endpoint
        async with self.setup_limiter.slot():
            current = self.coap.registration(endpoint)
            if current is None or current.reg_id != registration.reg_id:
                return  # registered again or gone meanwhile: that event owns the life
            try:
                life = await self._life(registration.device_id, current, endpoint)
            except NoCredentialsError as error:
                device_log(log, registration.device_id).error("not restored, no session: %s", error.reason)
                return
        if life is None:
            return
        await self._adopt_objects(life, current)
        current = self.coap.registration(endpoint)
        if current is None or current.reg_id != registration.reg_id:
            return
        if settled:
            life.restored(current)  # its observations run on: nothing to ask the device
        else:
            life.registered(current)

    async def resume(self) -> None:
        """After a restart: devices with telemetry left in the outbox get their session back, and the outbox
        is replayed without waiting for them to register again (they may never come back)."""
        waiting = [device for device in await self.store.outbox_devices() if device not in self.lives]
        # On a shared store, another node's outbox is its own, unless that node is gone.
        ours = await claimed(self._claim, waiting, Trigger.ORPHANED)
        for device_id in (device_id for device_id in waiting if device_id in ours):
            endpoint = endpoint_for(device_id) or device_id
            self._spawn(self._life(device_id, None, endpoint), f"resume-{device_id}")

    async def life_for(self, device_id: str, *, model_id: str | None = None) -> DeviceLife:
        """The life of a device that speaks no LwM2M (the HTTP ingest), started if need be: DPS with
        `model_id` (unless an import names one), then its session from the pool, unpinned (or ephemeral). Its
        device id is its endpoint name, as for a life resumed for its outbox."""
        connection = self.settings.ephemeral.http_connection
        life = await asyncio.shield(self._life(device_id, None, device_id, model_id, connection))
        if life is None:
            raise RuntimeError(f"device {device_id}: no life to deliver to")
        return life

    # -- TelemetrySink ----------------------------------------------------------------------------

    def on_registered(self, registration: Registration) -> None:
        device_log(log, registration.device_id).info(
            "registered as endpoint %s (LwM2M %s)", registration.endpoint, registration.version
        )
        self._spawn(self._registered(registration), f"register-{registration.device_id}")
        if self.seen_at is not None:
            self._spawn(self.seen_at(registration), f"seen-{registration.device_id}")

    def on_updated(self, registration: Registration) -> None:
        if self.ownership is not None:  # an Update here: its datagrams are here (one read when already ours)
            self._spawn(
                self._claim(registration.device_id, Trigger.REGISTRATION), f"claim-{registration.device_id}"
            )
        if self.seen_at is not None:
            self._spawn(self.seen_at(registration), f"seen-{registration.device_id}")
        life = self.lives.get(registration.device_id)
        if life is not None:
            previous = life.registration
            life.registration = registration
            if previous is not None and previous.objects.instances != registration.objects.instances:
                # New objects (Create/Delete on the device): a new codec shape, so set up again.
                self._spawn(self._reshape(life, registration), f"reshape-{registration.device_id}")

    async def _reshape(self, life: DeviceLife, registration: Registration) -> None:
        """The device's object instances changed: its codec is rebuilt for them (a new instance gets its
        component), then its properties are read and it is observed again."""
        entry = await self.store.device_for_endpoint(registration.endpoint)
        life.adopt_codec(self.codec_for(registration, entry))
        if life.registration is registration:  # not updated again meanwhile (that update reshapes itself)
            life.registered(registration)

    def on_deregistered(self, registration: Registration, reason: DeregisterReason) -> None:
        device_log(log, registration.device_id).info("registration ended: %s", reason.value)
        self._spawn(self._end(registration, reason), f"end-{registration.device_id}")

    async def _end(self, registration: Registration, reason: DeregisterReason) -> None:
        starting = self._starting.get(registration.device_id)
        if starting is not None:
            # Ended while its life was still being set up (DPS takes a while): let that finish, then end it,
            # rather than leave a pinned session connected for a device that is gone.
            await asyncio.wait([starting])
        if reason is not DeregisterReason.SHUTDOWN and self.coap.registration(registration.endpoint):
            return  # registered again meanwhile: the new registration owns the life
        await self._end_life(registration.device_id)

    def on_records(
        self,
        device: DeviceIdentity,
        records: Sequence[TelemetryRecord],
        source: TelemetrySource,
        *,
        confirmable: bool,
    ) -> Delivery:
        self._messages_in[source].inc()
        self.metrics.records_in.inc(len(records))
        life = self.lives.get(device.device_id)
        if life is not None:
            self._codec_before_records(life, device, source)
            return life.deliver(records, changes_only=source is TelemetrySource.NOTIFY)
        return asyncio.ensure_future(self._deliver_later(device, records, source, time.time()))

    async def _deliver_later(
        self,
        device: DeviceIdentity,
        records: Sequence[TelemetryRecord],
        source: TelemetrySource,
        received: float,
    ) -> Outcome:
        registration = (
            self.coap.registration(device.endpoint) if source is not TelemetrySource.INGEST else None
        )
        life = await self._life(device.device_id, registration, device.endpoint)
        if life is None:
            raise RuntimeError(f"device {device.device_id}: no life to deliver to")
        # The life may be one resumed for its outbox, started before this registration existed.
        self._codec_before_records(life, device, source)
        delivered = life.deliver(records, received, changes_only=source is TelemetrySource.NOTIFY)
        return delivered if isinstance(delivered, Outcome) else await delivered

    def _codec_before_records(
        self, life: DeviceLife, device: DeviceIdentity, source: TelemetrySource
    ) -> None:
        """A life without a codec (resumed after a restart for its outbox, before the device registered
        again) takes it from the device's current registration before any record is mapped: the records in
        hand must not wait for `_registered` to catch up, nor be mapped by no codec. Without a registration
        `DeviceLife.deliver` refuses them (5.03 + Max-Age)."""
        if life.codec is not None or source is TelemetrySource.INGEST:
            return
        registration = self.coap.registration(device.endpoint)
        if registration is not None:
            # No import entry names a codec for this device (the life would have loaded it at start), so
            # the codec is the default one for its objects, as `_registered` would choose.
            life.adopt_codec(self.codec_for(registration, None))

    # -- operations -------------------------------------------------------------------------------

    def _gauges(self) -> dict[str, dict[tuple[str, ...], float]]:
        figures = self.pool.metrics()
        sessions: dict[tuple[str, ...], float] = {
            (name.split(":", 1)[1],): float(value)
            for name, value in figures.items()
            if name.startswith("sessions:")
        }
        return {
            "iotc_translator_sessions": sessions,
            "iotc_translator_registrations": {
                (): float(len(self.coap.store)) if self._coap is not None else 0.0
            },
            "iotc_translator_outbox_depth": {(): float(self.store.outbox_size())},
            "iotc_translator_devices": {(): float(len(self.lives))},
        }

    def health(self) -> tuple[bool, dict[str, object]]:
        figures = self.pool.metrics()
        details: dict[str, object] = {
            "devices": len(self.lives),
            "sessions": {
                k.split(":", 1)[1]: v for k, v in figures.items() if k.startswith("sessions:") and v
            },
        }
        waiting = self.pool.in_state(SessionState.WAITING_APPROVAL)
        if waiting:
            # Refused by IoT Central until an operator approves or unblocks them: named, so the operator
            # knows whom to approve (their telemetry waits in the outbox meanwhile).
            details["waiting_for_approval"] = sorted(waiting)[:HEALTH_NAMES]
        return self._coap is not None, details
