"""The bridge: the CoAP face's telemetry sink and the owner of every device's life.

Registration → admission (the CoAP face) → credentials and codec → session (cached DPS assignment) →
static properties → observations → telemetry; desired properties, commands and offline commands flow back.
De-registration or expiry closes the session.

The bridge wires its parts and routes the CoAP face's events to them: the lives (bridge/lives.py) with
their credentials (bridge/credentials.py) and codecs (bridge/codec_choice.py), the ownership gate of a
cluster (bridge/ownership_gate.py), the restart (bridge/restart.py), the figures (bridge/figures.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from translator.bridge import figures
from translator.bridge.codec_admission import CODEC_RETRY, CodecRefusedError
from translator.bridge.codec_choice import CodecChoice
from translator.bridge.codecs import CodecCatalog
from translator.bridge.credentials import NoCredentialsError, credential_for
from translator.bridge.device import DeviceLife
from translator.bridge.ephemeral import Sessions
from translator.bridge.journal import RegistrationJournal
from translator.bridge.lives import DeviceLives
from translator.bridge.ownership_gate import OwnershipGate
from translator.bridge.pacing import SetupLimiter
from translator.bridge.restart import Restart
from translator.bridge.services import Deadlines, DeviceServices
from translator.bridge.sweep import DirectSweep
from translator.cluster.handover import HandOver
from translator.cluster.ownership import DeviceClaims, Trigger
from translator.coap import (
    BackPressure,
    Delivery,
    DeregisterReason,
    DeviceIdentity,
    Outcome,
    Registration,
    TelemetryRecord,
    TelemetrySource,
)
from translator.coap.snapshot import RegistrationSnapshot
from translator.iotc.client.credentials import Credential
from translator.iotc.client.pool import SessionPool
from translator.ops.logs import device_log
from translator.ops.metrics import Metrics
from translator.settings import Settings
from translator.store import DeviceEntry, Store

if TYPE_CHECKING:
    from translator.coap import Lwm2mServer

log = logging.getLogger(__name__)


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
        self.gate = OwnershipGate(ownership)
        handover = HandOver(ownership, self._let_go) if ownership is not None else None
        self.pool = pool
        self.sessions = Sessions(pool, settings)
        self.catalog = catalog
        self.codecs = CodecChoice(catalog, store, pool)
        self.metrics = metrics
        self.clock = clock
        self._coap: Lwm2mServer | None = None
        self._services: DeviceServices | None = None
        gateway = settings.gateway
        self._lives = DeviceLives(
            store=store,
            codecs=self.codecs,
            sessions=self.sessions,
            credential_for=self.credential_for,
            services=lambda: self.services,
            gateway=gateway.device_id if gateway.enabled else None,  # devices register downstream of it
            # A node that lost the device does not reconnect it (cluster.md).
            before_reconnect=(
                (lambda device_id: functools.partial(handover.before_reconnect, device_id))
                if handover is not None
                else None
            ),
        )
        self.lives: dict[str, DeviceLife] = self._lives.lives
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sweep = DirectSweep(clock)
        self.setup_limiter = SetupLimiter(settings.coap.setup_concurrency, settings.coap.setup_rate)
        self.journal = RegistrationJournal(ownership or store, self._snapshot)
        self._restart = Restart(
            settings=settings.coap,
            store=store,
            gate=self.gate,
            journal=self.journal,
            lives=self._lives,
            limiter=self.setup_limiter,
            coap=lambda: self.coap,
            adopt_objects=self.codecs.adopt_objects,
            spawn=self._spawn,
            clock=clock,
        )
        # In a cluster: records where a device's Register/Update arrived (the relay's seen-at index).
        self.seen_at: Callable[[Registration], Awaitable[None]] | None = None
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
        await self._lives.close(self._tasks)

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
        return await credential_for(self.settings.iotc, self.settings.state_dir / "certs", device_id, entry)

    async def _registered(self, registration: Registration) -> None:
        # The registration itself reaches the store through the journal (the CoAP face tells it).
        device_id = registration.device_id
        if not await self.gate.claim(device_id, Trigger.REGISTRATION):
            return
        try:
            life = await self._lives.life(device_id, registration, registration.endpoint)
        except NoCredentialsError as error:
            device_log(log, device_id).error("refused, no session: %s", error.reason)
            return
        except CodecRefusedError as error:
            device_log(log, device_id).warning("not set up, no session: %s", error)
            return
        if life is None:
            return
        await self.codecs.adopt_objects(life, registration)
        current = self.coap.registration(registration.endpoint)
        if current is None:
            # De-registered or expired while its life was being set up: end it now (a pinned session for a
            # device that is gone would stay connected for ever).
            await self._end(registration, DeregisterReason.DEREGISTERED)
        elif current.reg_id == registration.reg_id:
            life.registered(current)
        # else: registered again meanwhile; that registration's own task sets the life up.

    def _let_go(self, device_id: str) -> None:
        self._spawn(self._lives.end(device_id), f"release-{device_id}")

    async def still_mine(self, device_id: str) -> bool:
        """The fence of a consuming action (outbox replay, command execution): this node still owns the
        device at the epoch it claimed. Raises StoreError when that cannot be known."""
        return await self.gate.still_mine(device_id)

    async def restore(self) -> None:
        """Before the CoAP socket opens: the previous run's registrations come back (bridge/restart.py)."""
        await self._restart.restore()

    def start_restored(self) -> None:
        """Once the CoAP face runs: each restored device gets its life back (bridge/restart.py)."""
        self._restart.start_restored()

    async def resume(self) -> None:
        """After a restart: devices with telemetry left in the outbox get their session back for it."""
        await self._restart.resume()

    async def adopt(self, device_ids: set[str]) -> None:
        """Devices this node took from a dead owner (cluster/sweeper.py): their outboxes replayed now."""
        await self._restart.adopt(device_ids)

    async def life_for(self, device_id: str, *, model_id: str | None = None) -> DeviceLife:
        """The life of a device that speaks no LwM2M (the HTTP ingest), started if need be: DPS with
        `model_id` (unless an import names one), then its session from the pool, unpinned (or ephemeral). Its
        device id is its endpoint name, as for a life resumed for its outbox."""
        connection = self.settings.ephemeral.http_connection
        life = await asyncio.shield(self._lives.life(device_id, None, device_id, model_id, connection))
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
                self.gate.claim(registration.device_id, Trigger.REGISTRATION),
                f"claim-{registration.device_id}",
            )
        if self.seen_at is not None:
            self._spawn(self.seen_at(registration), f"seen-{registration.device_id}")
        life = self.lives.get(registration.device_id)
        if life is not None:
            previous = life.registration
            life.registration = registration
            if previous is not None and previous.objects.instances != registration.objects.instances:
                # New objects (Create/Delete on the device): a new codec shape, so set up again.
                self._spawn(self.codecs.reshape(life, registration), f"reshape-{registration.device_id}")

    def on_deregistered(self, registration: Registration, reason: DeregisterReason) -> None:
        device_log(log, registration.device_id).info("registration ended: %s", reason.value)
        self._spawn(self._end(registration, reason), f"end-{registration.device_id}")

    async def _end(self, registration: Registration, reason: DeregisterReason) -> None:
        starting = self._lives.starting(registration.device_id)
        if starting is not None:
            # Ended while its life was still being set up (DPS takes a while): let that finish, then end it,
            # rather than leave a pinned session connected for a device that is gone.
            await asyncio.wait([starting])
        if reason is not DeregisterReason.SHUTDOWN and self.coap.registration(registration.endpoint):
            return  # registered again meanwhile: the new registration owns the life
        await self._lives.end(registration.device_id)

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
        try:
            life = await self._lives.life(device.device_id, registration, device.endpoint)
        except CodecRefusedError as error:
            # Registered before its codec broke (restored after a restart): held back, not lost, not 2.04.
            device_log(log, device.device_id).warning(
                "endpoint=%s: records held back 5.03 (Max-Age %d): %s", device.endpoint, CODEC_RETRY, error
            )
            raise BackPressure(str(error), retry_after=CODEC_RETRY) from None
        if life is None:
            raise RuntimeError(f"device {device.device_id}: no life to deliver to")
        # The life may be one resumed for its outbox, started before this registration existed.
        self._codec_before_records(life, device, source)
        delivered = life.deliver(records, received, changes_only=source is TelemetrySource.NOTIFY)
        return delivered if isinstance(delivered, Outcome) else await delivered

    def _codec_before_records(
        self, life: DeviceLife, device: DeviceIdentity, source: TelemetrySource
    ) -> None:
        """A life without a codec takes its registration's before any record is mapped (codec_choice.py)."""
        if life.codec is not None or source is TelemetrySource.INGEST:
            return
        self.codecs.before_records(life, self.coap.registration(device.endpoint))

    # -- operations -------------------------------------------------------------------------------

    def _gauges(self) -> dict[str, dict[tuple[str, ...], float]]:
        return figures.gauges(self.pool, self._coap, self.store, self.lives)

    def health(self) -> tuple[bool, dict[str, object]]:
        return self._coap is not None, figures.health(self.pool, self.lives)
