"""A registration's set-up: static properties, notification attributes, observations.

The first registration of a device (or one with a new object list) gets the full set-up: one Read per
object instance with properties (delivered as reported properties and first telemetry), the codec's
attributes written with Write-Attributes, then the observations grouped by `plan_observations` — except
those of resources the Read showed absent (`setup_filter.present_only`).

A full Register from an endpoint whose set-up already completed for the same object list — what a
queue-mode LwM2M 1.2 client sends at every wake — only resumes: the Register ended the previous
registration's observations (LwM2M: observations survive an Update, not a Register; docs/coap.md), so the
groups are observed again, but nothing is read (the properties were reported already), and no attribute is
written (the device keeps its attributes across registrations, including those it set itself). The
observations' first answers carry the current values; the device's change filter forwards only what
changed while it slept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING

from translator.bridge.pacing import SetupLimiter
from translator.bridge.services import Deadlines, DeviceView, Spawn
from translator.bridge.setup_filter import present_only
from translator.coap import DeviceManager, DownlinkError, Registration, TelemetryRecord
from translator.codec.observation_plan import ObservationGroup, plan_observations
from translator.codec.spec import Observation
from translator.lwm2m import Path, Record

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)


def set_up_key(registration: Registration) -> Hashable:
    """What must be equal for a new registration to resume the previous one's set-up."""
    objects = registration.objects
    return (
        registration.version,
        tuple(sorted(objects.instances)),
        tuple(sorted(objects.objects.items(), key=lambda item: item[0])),
    )


class RegistrationSetUp:
    """One device's set-up task; remembers for which object list the last full set-up completed."""

    def __init__(
        self,
        device: DeviceView,
        *,
        downlinks: DeviceManager,
        deadlines: Deadlines,
        limiter: SetupLimiter,
        deliver: Callable[[Sequence[TelemetryRecord]], object],
        spawn: Spawn,
    ) -> None:
        self._device = device
        self._downlinks = downlinks
        self._deadlines = deadlines
        self._limiter = limiter
        self._deliver = (
            deliver  # the Read's values, forwarded where they changed (its answer is the device's)
        )
        self._spawn = spawn
        self._done_for: Hashable | None = None
        self._absent: frozenset[Path] = frozenset()  # left out of the observations (see present_only)
        self._task: asyncio.Task[None] | None = None
        self._log = logging.LoggerAdapter(log, {"device_id": device.device_id})

    def mark_done(self, registration: Registration) -> None:
        """Set up already (restored after a restart with its observations): a later Register with the same
        object list only resumes."""
        self._done_for = set_up_key(registration)

    def start(self, registration: Registration) -> bool:
        """Set up for `registration` (cancelling a set-up still running); True when it only resumes."""
        if self._task is not None:
            self._task.cancel()
        key = set_up_key(registration)
        resume = self._done_for == key
        self._task = self._spawn(self._run(registration, key, resume), "setup")
        return resume

    async def _run(self, registration: Registration, key: Hashable, resume: bool) -> None:
        if self._device.codec is None:
            return
        # A restart or a registration flood: set-ups take turns (bridge/pacing.py).
        async with self._limiter.slot():
            await self._set_up(registration, key, resume)

    async def _set_up(self, registration: Registration, key: Hashable, resume: bool) -> None:
        codec = self._device.codec
        if codec is None:
            return
        devices = self._downlinks
        devices.settle(registration.endpoint, registration.reg_id, False)  # a restart now sets up again
        if not resume:
            self._done_for = None  # an interrupted full set-up is done again in full next time
            read = await self._read_properties(registration)
            # Resources the device's own Read showed absent are neither given attributes nor observed
            # (they would only earn 4.04s and warnings); a resumed set-up leaves out the same ones.
            kept, absent = present_only(codec.observations(registration.objects.instances), read)
            self._absent = frozenset(absent)
            if absent:
                self._log.info("not observed, absent on the device: %s", ", ".join(map(str, absent)))
            await self._write_attributes(registration, kept)
        instances = registration.objects.instances
        observations = [o for o in codec.observations(instances) if o.path not in self._absent]
        groups = plan_observations(observations, composite=registration.version_tuple >= (1, 1))
        await self._observe(registration, groups)
        self._done_for = key
        devices.settle(registration.endpoint, registration.reg_id)  # a restart restores it as it is
        self._log.info(
            "%s: observing %d paths in %d requests",
            "resumed" if resume else "set up",
            sum(len(group.paths) for group in groups),
            len(groups),
        )

    async def _read_properties(self, registration: Registration) -> dict[Path, list[Record]]:
        """One Read per object instance with properties; the values go out once (reported properties,
        and the telemetry the Read happens to carry, which the observations' first answers then do not
        repeat)."""
        codec = self._device.codec
        assert codec is not None
        deadline = self._deadlines.downlink()
        wanted = sorted(
            {
                path.parent
                for path in codec.property_paths(registration.objects.instances)
                if path.parent is not None
            }
        )
        read: dict[Path, list[Record]] = {}
        for instance in wanted:
            try:
                records = await self._downlinks.read(
                    registration.endpoint, instance, deadline=self._deadlines.within(deadline)
                )
            except DownlinkError as error:
                self._log.warning("read %s for properties failed: %s", instance, error)
                continue
            read[instance] = [r for r in records if isinstance(r, Record)]
            self._deliver(records)
        return read

    async def _write_attributes(self, registration: Registration, observations: list[Observation]) -> None:
        deadline = self._deadlines.downlink()
        for observation in observations:
            if not observation.attributes:
                continue
            try:
                await self._downlinks.write_attributes(
                    registration.endpoint,
                    observation.path,
                    observation.attributes,
                    deadline=self._deadlines.within(deadline),
                )
            except DownlinkError as error:
                self._log.warning("write-attributes %s failed: %s", observation.path, error)

    async def _observe(self, registration: Registration, groups: list[ObservationGroup]) -> None:
        devices, within = self._downlinks, self._deadlines.within
        deadline = self._deadlines.downlink()
        for group in groups:  # one refused group (a resource the device lacks) stops no other
            try:
                if group.composite:
                    await devices.observe_composite(
                        registration.endpoint, group.paths, deadline=within(deadline)
                    )
                else:
                    await devices.observe(registration.endpoint, group.paths[0], deadline=within(deadline))
            except DownlinkError as error:
                self._log.warning("observe %s failed: %s", ",".join(map(str, group.paths)), error)
