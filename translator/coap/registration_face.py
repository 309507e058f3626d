"""The LwM2M registration interface: Register, Update and De-register (through aiocoap), the expiry of
registrations, and registrations restored from a previous run.

Each handler runs the gatekeeper's checks first, then changes the device table and tells the sink after
the answer went out (`call_soon`), and the device manager when a device comes, wakes or goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aiocoap
from aiocoap.numbers.codes import Code as AioCode

from translator.coap.device_table import DeviceTable
from translator.coap.dtls.peers import is_virtual
from translator.coap.errors import UnknownRegistration
from translator.coap.gatekeeper import Gatekeeper, check_owner
from translator.coap.hooks import RegisterGate
from translator.coap.management import DeviceManager
from translator.coap.queue import DownlinkQueue
from translator.coap.registration import Peer, parse_objects, parse_query, peer_host
from translator.coap.settings import CoapSettings
from translator.coap.sink import DeregisterReason
from translator.coap.snapshot import RegistrationSnapshot
from translator.coap.state import Device, Observation
from translator.lwm2m import ObjectRegistry
from translator.ops.logs import device_log

log = logging.getLogger(__name__)


class RegistrationFace:
    def __init__(
        self,
        *,
        settings: CoapSettings,
        table: DeviceTable,
        manager: DeviceManager,
        gatekeeper: Gatekeeper,
        registry: ObjectRegistry,
        clock: Callable[[], float],
        register_gate: RegisterGate | None = None,
    ) -> None:
        self._queue_window = settings.queue_window
        self._unbounded = settings.unbounded_lifetime
        self._table = table
        self._store = table.store
        self._devices = table.devices
        self._manager = manager
        self._gatekeeper = gatekeeper
        self._registry = registry
        self._clock = clock
        self._register_gate = register_gate
        self.registrations_total = 0  # every successful Register since start, re-registrations included

    async def register(self, request: Any) -> Any:
        peer: Peer = request.remote.sockaddr
        query = tuple(request.opt.uri_query)
        if not is_virtual(peer):
            await self._gatekeeper.refuse_secured(parse_query(query).endpoint)
        identity, params, objects = self._gatekeeper.admit_register(
            query, peer, request.opt.content_format, bytes(request.payload)
        )
        if self._register_gate is not None:  # e.g. the claim of a device on a shared store
            await self._register_gate(identity)
        now = self._clock()
        outcome = self._store.register(identity, params, objects, peer, now)
        self.registrations_total += 1
        reg = outcome.registration
        old = self._devices.pop(reg.endpoint, None)
        queue = old.queue if old is not None else DownlinkQueue[Any](self._queue_window)
        if old is not None:
            self._manager.end_device(old, "re-registered", keep_queue=True)
        dev = Device(reg, self._registry.for_versions(reg.objects.objects), queue)
        self._devices[reg.endpoint] = dev
        self._table.changed(reg.endpoint)
        device_log(log, reg.device_id).info(
            "endpoint=%s: registered rd/%s lwm2m=%s lt=%d b=%s queue=%s from %s%s",
            reg.endpoint,
            reg.reg_id,
            reg.version,
            reg.lifetime,
            reg.binding,
            reg.queue_mode,
            peer_host(peer),
            f" (replaces rd/{outcome.replaced.reg_id})" if outcome.replaced else "",
        )
        loop = asyncio.get_running_loop()
        loop.call_soon(self._table.tell_registered, reg)  # after the 2.01 went out
        loop.call_soon(self._manager.wake, dev, now)
        return aiocoap.Message(code=AioCode.CREATED, location_path=reg.location)

    def update(self, request: Any, reg_id: str) -> Any:
        peer: Peer = request.remote.sockaddr
        params = parse_query(tuple(request.opt.uri_query), update=True)
        payload = bytes(request.payload)
        self._gatekeeper.check_size(payload)
        objects = parse_objects(request.opt.content_format, payload)
        known = self._store.get(reg_id)
        check_owner(known, peer)
        if objects is not None:
            self._gatekeeper.admit_objects(known.endpoint if known is not None else f"rd/{reg_id}", objects)
        now = self._clock()
        reg = self._store.update(reg_id, params, objects, peer, now)
        dev = self._devices.get(reg.endpoint)
        if dev is None:  # cannot happen while store and devices agree; be safe
            raise UnknownRegistration(f"no registration rd/{reg_id}")
        dev.registration = reg
        if objects is not None:
            dev.lookup = self._registry.for_versions(reg.objects.objects)
        self._table.changed(reg.endpoint)
        device_log(log, reg.device_id).info(
            "endpoint=%s: updated rd/%s lt=%d b=%s from %s",
            reg.endpoint,
            reg_id,
            reg.lifetime,
            reg.binding,
            peer_host(peer),
        )
        loop = asyncio.get_running_loop()
        loop.call_soon(self._table.tell_updated, reg)
        loop.call_soon(self._manager.wake, dev, now)
        return aiocoap.Message(code=AioCode.CHANGED)

    def deregister(self, request: Any, reg_id: str) -> Any:
        check_owner(self._store.get(reg_id), request.remote.sockaddr)
        reg = self._store.deregister(reg_id)
        dev = self._devices.pop(reg.endpoint, None)
        if dev is not None:
            self._manager.end_device(dev, "de-registered")
        self._table.changed(reg.endpoint)
        device_log(log, reg.device_id).info("endpoint=%s: de-registered rd/%s", reg.endpoint, reg_id)
        asyncio.get_running_loop().call_soon(
            self._table.tell_deregistered, reg, DeregisterReason.DEREGISTERED
        )
        return aiocoap.Message(code=AioCode.DELETED)

    def expire(self, now: float) -> None:
        for reg in self._store.expire(now):
            dev = self._devices.pop(reg.endpoint, None)
            if dev is not None:
                self._manager.end_device(dev, "registration expired")
            device_log(log, reg.device_id).info(
                "endpoint=%s: registration rd/%s expired", reg.endpoint, reg.reg_id
            )
            self._table.changed(reg.endpoint)
            self._table.tell_deregistered(reg, DeregisterReason.EXPIRED)

    def end_all(self) -> None:
        """The server stops: every device ends, and the sink hears why."""
        for dev in list(self._devices.values()):
            self._manager.end_device(dev, "server shutting down")
            self._table.tell_deregistered(dev.registration, DeregisterReason.SHUTDOWN)
        self._devices.clear()

    def restore(
        self, snapshots: Sequence[RegistrationSnapshot], observe_token: Callable[[bytes, Observation], None]
    ) -> list[RegistrationSnapshot]:
        """Take back registrations and observations kept by a previous run (see `Lwm2mServer.restore`);
        `observe_token` hands each restored token to the datagram tap."""
        taken: list[RegistrationSnapshot] = []
        for snapshot in snapshots:
            reg = self._store.restore(snapshot.registration)
            if reg is None:
                continue
            lookup = self._registry.for_versions(reg.objects.objects)  # shared per object list
            dev = Device(reg, lookup, DownlinkQueue[Any](self._queue_window))
            dev.settled = snapshot.settled
            for kept in snapshot.observations:
                obs = Observation(
                    reg.endpoint, reg.reg_id, kept.paths, kept.token, kept.content_format, kept.composite
                )
                dev.observations[kept.paths] = obs
                observe_token(kept.token, obs)
                if kept.composite:
                    dev.composite = True
            self._devices[reg.endpoint] = dev
            taken.append(snapshot)
            device_log(log, reg.device_id).info(
                "endpoint=%s: restored rd/%s (%d observations, %.0fs left)",
                reg.endpoint,
                reg.reg_id,
                len(dev.observations),
                reg.expires_at(0.0, self._unbounded) - self._clock(),
            )
        return taken
