"""Desired-property sync: writable properties from IoT Central written to the device, and their
acknowledgements.

After every (re)connect the twin is fetched and the desired versions not acknowledged yet are applied;
between connects, each desired-properties update is applied as it comes (`DesiredSync`).

IoT Plug and Play convention (https://learn.microsoft.com/azure/iot/concepts-convention, "Writable
properties"): an acknowledgement's `value` is the value the device actually uses. So when the device refuses
a write (4.xx: 400, the request's fault; 5.xx: 500, the device's), the translator reads the resource back and
acknowledges with what it holds, not with the refused value.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from translator.bridge.ownership_gate import owned_elsewhere
from translator.bridge.services import Deadlines, DeviceView, Spawn
from translator.coap import DeviceManager, DeviceResponseError, DownlinkError, ServerRefusedError
from translator.codec import DeviceMapper, PendingWrite, ack_code_for
from translator.iotc.client.session import DeviceSession
from translator.iotc.protocol.twin import (
    AckCode,
    DesiredProperty,
    JsonObject,
    pending_acknowledgements,
)
from translator.lwm2m import Record
from translator.ops.logs import device_log

log = logging.getLogger(__name__)

Report = Callable[[JsonObject], Awaitable[None]]  # a reported-properties patch; a lost one is only logged


class DesiredSync:
    def __init__(
        self,
        device: DeviceView,
        *,
        downlinks: DeviceManager,
        deadlines: Deadlines,
        report: Report,
        spawn: Spawn,
        log: logging.LoggerAdapter[Any],
        owns: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._device = device
        self._owns = owns
        self._downlinks = downlinks
        self._deadlines = deadlines
        self._report = report
        self._spawn = spawn
        self._log = log

    async def reconcile(self, session: DeviceSession) -> None:
        """After a (re)connect: settle the desired properties not acknowledged yet."""
        twin = await session.get_twin()
        mapper, codec = self._device.mapper, self._device.codec
        if mapper is not None:
            mapper.adopt_twin(twin)
        components = codec.component_names if codec is not None else frozenset()
        pending = pending_acknowledgements(twin, components)
        if pending:
            self._log.info("reconciling %d desired properties", len(pending))
            await self.apply(pending)

    def on_desired(self, properties: list[DesiredProperty]) -> None:
        self._spawn(self.apply(properties), "desired")

    async def _moved(self) -> bool:
        """Whether another node claimed the device since this session got the update: then the owner's
        session writes and acknowledges it — it fetches the twin when it connects — and this one leaves the
        device alone, as a command is (`owned_elsewhere`)."""
        if self._owns is None:
            return False
        return await owned_elsewhere(self._owns, self._log, "desired properties", "applied")

    async def apply(self, properties: list[DesiredProperty]) -> None:
        if await self._moved():
            return
        mapper = self._device.mapper
        if mapper is None:
            for prop in properties:
                await self._report(
                    prop.acknowledge(AckCode.REJECTED, "this device has no writable properties")
                )
            return
        plan = mapper.desired(properties)
        for acknowledgement in plan.acknowledgements:
            await self._report(acknowledgement)
        registration = self._device.registration
        for pending in plan.writes:
            if registration is not None and registration.queue_mode:
                await self._report(
                    pending.desired.acknowledge(AckCode.IN_PROGRESS, "waiting for the device to wake")
                )
            wait = functools.partial(self._deadlines.within, self._deadlines.downlink())
            endpoint = self._device.endpoint
            await self._report(await write_desired(self._downlinks, endpoint, mapper, pending, wait))


async def write_desired(
    devices: DeviceManager,
    endpoint: str,
    mapper: DeviceMapper,
    pending: PendingWrite,
    within: Callable[[], float],
) -> JsonObject:
    """Write `pending` and return the acknowledgement to report; `within()` is the seconds the request
    may still wait for a sleeping device."""
    try:
        await devices.write(endpoint, pending.write.path, pending.write.records, deadline=within())
    except DeviceResponseError as error:
        held: Sequence[Record] | None = None
        try:
            held = await devices.read(endpoint, pending.write.path, deadline=within())
        except DownlinkError as read_error:
            device_log(log, mapper.device_id).info(
                "endpoint=%s: reading %s back after a refused write failed: %s",
                endpoint,
                pending.write.path,
                read_error,
            )
        value = mapper.held_value(pending.desired, held)
        if value is not ...:
            mapper.acknowledged(pending.desired, value)
        return pending.failed(str(error), ack_code_for(error.code), value)
    except ServerRefusedError as error:
        return pending.failed(str(error), AckCode.REJECTED, mapper.held_value(pending.desired, None))
    except DownlinkError as error:
        return pending.failed(str(error), AckCode.FAILED, mapper.held_value(pending.desired, None))
    mapper.acknowledged(pending.desired)
    return pending.completed()
