"""The registered devices: the registration store and each endpoint's device state, kept in step, and who
is told of a change (the registration journal, the sink's registration events).

Changes that come from elsewhere than the registration interface land here too: a lifetime the server
wrote to the device, an address that moved (NAT rebinding seen on a notification).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from translator.coap.registration import Peer, Registration, RegistrationStore, peer_host
from translator.coap.settings import CoapSettings
from translator.coap.sink import DeregisterReason, TelemetrySink
from translator.coap.snapshot import (
    NoJournal,
    ObservationSnapshot,
    RegistrationJournal,
    RegistrationSnapshot,
    expiry_wallclock,
)
from translator.coap.state import Device
from translator.ops.logs import device_log, log_for

log = logging.getLogger(__name__)


class DeviceTable:
    def __init__(
        self,
        *,
        settings: CoapSettings,
        sink: TelemetrySink,
        clock: Callable[[], float],
        wallclock: Callable[[], float],
        journal: RegistrationJournal | None = None,
    ) -> None:
        self._sink = sink
        self._journal: RegistrationJournal = journal or NoJournal()
        self._clock = clock
        self._wallclock = wallclock
        self._unbounded = settings.unbounded_lifetime
        self.devices: dict[str, Device] = {}
        self.store = RegistrationStore(
            grace=settings.grace, unbounded=settings.unbounded_lifetime, last_heard=self._last_heard
        )

    def changed(self, endpoint: str) -> None:
        try:
            self._journal.changed(endpoint)
        except Exception:
            reg = self.store.by_endpoint(endpoint)
            log_for(log, None if reg is None else reg.device_id).exception(
                "endpoint=%s: registration journal failed", endpoint
            )

    # --- the sink's registration events (a failing sink must not fail the request) ------------------

    def tell_registered(self, reg: Registration) -> None:
        try:
            self._sink.on_registered(reg)
        except Exception:
            log.exception("sink on_registered failed")

    def tell_updated(self, reg: Registration) -> None:
        try:
            self._sink.on_updated(reg)
        except Exception:
            log.exception("sink on_updated failed")

    def tell_deregistered(self, reg: Registration, reason: DeregisterReason) -> None:
        try:
            self._sink.on_deregistered(reg, reason)
        except Exception:
            log.exception("sink on_deregistered failed")

    # --- changes from elsewhere than the registration interface -------------------------------------

    def _last_heard(self, reg: Registration) -> float | None:
        dev = self.devices.get(reg.endpoint)
        if dev is None or dev.queue.awake_until == float("-inf"):
            return None
        return dev.queue.awake_until - dev.queue.window

    def lifetime_written(self, endpoint: str, lifetime: int) -> None:
        """The device took a new lifetime (/1/x/1) from us: its registration lives by it from now on."""
        dev = self.devices.get(endpoint)
        if dev is None:
            return
        reg = self.store.set_lifetime(dev.registration.reg_id, lifetime)
        if reg is None or reg is dev.registration:
            return
        dev.registration = reg
        self.changed(endpoint)
        device_log(log, reg.device_id).info(
            "endpoint=%s: lifetime %d s written to the device", endpoint, lifetime
        )
        asyncio.get_running_loop().call_soon(self.tell_updated, reg)

    def moved(self, dev: Device, peer: Peer) -> None:
        """A notification on one of the device's tokens came from a new address (NAT rebinding): downlinks
        and Sends follow it."""
        old = dev.registration
        reg = self.store.touch(old.reg_id, peer)
        if reg is None:
            return
        dev.registration = reg
        device_log(log, reg.device_id).info(
            "endpoint=%s: address moved from %s to %s (notification)",
            reg.endpoint,
            peer_host(old.peer),
            peer_host(peer),
        )
        self.changed(reg.endpoint)
        self.tell_updated(reg)

    # --- surviving a restart ----------------------------------------------------------------------

    def snapshot(self, endpoint: str) -> RegistrationSnapshot | None:
        """The registration of `endpoint` and its observations as they are now; None when not registered."""
        reg = self.store.by_endpoint(endpoint)
        dev = self.devices.get(endpoint)
        if reg is None or dev is None:
            return None
        observations = tuple(
            ObservationSnapshot(obs.token, obs.paths, obs.content_format, obs.composite)
            for obs in dev.observations.values()
            if not obs.cancelled
        )
        expires = expiry_wallclock(
            reg, now=self._clock(), wall_now=self._wallclock(), unbounded=self._unbounded
        )
        return RegistrationSnapshot(reg, observations, expires, dev.settled)
