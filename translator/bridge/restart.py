"""After a restart: the registrations kept by the previous run come back into the CoAP face and their
lives resume (through the set-up limiter, so a restart does not burst), and devices with telemetry left in
the outbox get their session back for it, whether or not they register again."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from translator.bridge.codec_admission import CodecRefusedError
from translator.bridge.credentials import NoCredentialsError
from translator.bridge.device import DeviceLife
from translator.bridge.journal import RegistrationJournal
from translator.bridge.lives import DeviceLives
from translator.bridge.ownership_gate import OwnershipGate
from translator.bridge.pacing import SetupLimiter
from translator.cluster.claims import claimed
from translator.cluster.ownership import Trigger
from translator.coap import CoapSettings, Registration, endpoint_for
from translator.coap.snapshot import RegistrationSnapshot, plan_restore
from translator.ops.logs import device_log
from translator.store import Store

if TYPE_CHECKING:
    from translator.coap import Lwm2mServer

log = logging.getLogger(__name__)

Spawn = Callable[[Awaitable[Any], str], None]


class Restart:
    def __init__(
        self,
        *,
        settings: CoapSettings,
        store: Store,
        gate: OwnershipGate,
        journal: RegistrationJournal,
        lives: DeviceLives,
        limiter: SetupLimiter,
        coap: Callable[[], Lwm2mServer],
        adopt_objects: Callable[[DeviceLife, Registration], Awaitable[None]],
        spawn: Spawn,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._store = store
        self._gate = gate
        self._journal = journal
        self._lives = lives
        self._limiter = limiter
        self._coap = coap
        self._adopt_objects = adopt_objects
        self._spawn = spawn
        self._clock = clock
        self._restored: list[RegistrationSnapshot] = []

    async def restore(self) -> None:
        """Before the CoAP socket opens: registrations kept by the previous run come back into the CoAP face
        (with their observations); those expired meanwhile are deleted. `start_restored` then resumes their
        lives once the face runs."""
        records = await self._store.registrations()
        # On a shared store: this node's devices and orphans; a live node's registrations are its own.
        ours = await claimed(self._gate.claim, (r.device_id for r in records), Trigger.ORPHANED)
        records = [record for record in records if record.device_id in ours]
        plan = plan_restore(
            ((r.endpoint, r.device_id, r.data) for r in records),
            grace=self._settings.grace,
            now=self._clock(),
            wall_now=time.time(),
            unbounded=self._settings.unbounded_lifetime,
        )
        if plan.delete:
            await self._journal.write_now([], plan.delete)
        self._restored = self._coap().restore(plan.restore)
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
        async with self._limiter.slot():
            current = self._coap().registration(endpoint)
            if current is None or current.reg_id != registration.reg_id:
                return  # registered again or gone meanwhile: that event owns the life
            try:
                life = await self._lives.life(registration.device_id, current, endpoint)
            except NoCredentialsError as error:
                device_log(log, registration.device_id).error("not restored, no session: %s", error.reason)
                return
            except CodecRefusedError as error:
                device_log(log, registration.device_id).warning("not restored, no session: %s", error)
                return
        if life is None:
            return
        await self._adopt_objects(life, current)
        current = self._coap().registration(endpoint)
        if current is None or current.reg_id != registration.reg_id:
            return
        if settled:
            life.restored(current)  # its observations run on: nothing to ask the device
        else:
            life.registered(current)

    async def resume(self) -> None:
        """After a restart: devices with telemetry left in the outbox get their session back, and the outbox
        is replayed without waiting for them to register again (they may never come back)."""
        waiting = [device for device in await self._store.outbox_devices() if device not in self._lives.lives]
        # On a shared store, another node's outbox is its own, unless that node is gone.
        ours = await claimed(self._gate.claim, waiting, Trigger.ORPHANED)
        await self.adopt(ours)

    async def adopt(self, device_ids: set[str]) -> None:
        """Devices this node owns now without a Register (at start, or taken from a dead node by the
        cluster's sweeper): those with telemetry in the outbox get their session, which replays it."""
        for device_id in await self._store.outbox_devices():
            if device_id in device_ids and device_id not in self._lives.lives:
                endpoint = endpoint_for(device_id) or device_id
                self._spawn(self._resume_outbox(device_id, endpoint), f"resume-{device_id}")

    async def _resume_outbox(self, device_id: str, endpoint: str) -> None:
        try:
            await self._lives.life(device_id, None, endpoint)
        except NoCredentialsError as error:
            device_log(log, device_id).error("outbox not replayed, no session: %s", error.reason)
        except CodecRefusedError as error:
            device_log(log, device_id).warning("outbox not replayed, no session: %s", error)
