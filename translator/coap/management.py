"""Device management (server → device): the face's one entry point for downlinks and observations.

Every operation is `await manager.op(endpoint, ..., timeout=None, deadline=None)`, or
`await manager.send(endpoint, request)` with a typed request (requests.py): `timeout` bounds the exchange
with the device, `deadline` (queue mode) bounds how long the request may wait for a sleeping device.
Results are typed values; failures are `DownlinkError`s (see errors.py).

The parts, along Leshan's seams: typed requests (requests.py) → the queue-mode sender (queuemode.py),
which decorates the plain downlink sender (sender.py); the observation service (observations.py); and
notification receive (notifications.py). This class only wires them together.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from translator.coap import wire
from translator.coap.background import Background
from translator.coap.dedup import DedupCache
from translator.coap.errors import DeviceTimeoutError
from translator.coap.hotpath import DatagramTap
from translator.coap.notifications import NotificationReceiver
from translator.coap.observations import ObservationService
from translator.coap.queuemode import Presence, QueueModeSender
from translator.coap.registration import Peer
from translator.coap.requests import (
    CancelObservation,
    Create,
    Delete,
    Discover,
    DownlinkRequest,
    Execute,
    Observe,
    ObserveComposite,
    Read,
    ReadComposite,
    Write,
    WriteAttributes,
)
from translator.coap.responder import Responder
from translator.coap.sender import DownlinkSender
from translator.coap.settings import CoapSettings
from translator.coap.sink import TelemetrySink
from translator.coap.state import Device, Observation, ObservationHandle
from translator.lwm2m import Link, Path, Record

__all__ = ["Device", "DeviceManager", "Observation", "ObservationHandle"]

T = TypeVar("T")


class DeviceManager:
    """Downlink operations, queue mode and observations for the registered devices."""

    def __init__(
        self,
        *,
        settings: CoapSettings,
        sink: TelemetrySink,
        devices: Mapping[str, Device],
        tap: DatagramTap,
        dedup: DedupCache,
        responder: Responder,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        lifetime_written: Callable[[str, int], None] | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._devices = devices
        self._on_change = on_change or (lambda _endpoint: None)
        self._background = Background()
        self._observations = ObservationService(
            settings=settings,
            tap=tap,
            deliver=self._deliver,
            clock=clock,
            wallclock=wallclock,
            on_change=self._on_change,
        )
        self._sender = DownlinkSender(
            settings=settings,
            tap=tap,
            observations=self._observations,
            wallclock=wallclock,
            lifetime_written=lifetime_written,
        )
        self._queue = QueueModeSender(self._sender, settings=settings, devices=devices, clock=clock)
        self._receiver = NotificationReceiver(
            settings=settings,
            sink=sink,
            devices=devices,
            tap=tap,
            dedup=dedup,
            responder=responder,
            observations=self._observations,
            background=self._background,
            wake=self._queue.wake,
            clock=clock,
            wallclock=wallclock,
        )

    def bind(self, context: Any, interface: Any) -> None:
        self._sender.bind(context, interface)

    # --- life cycle of devices and of the manager ---------------------------------------------------

    def wake(self, dev: Device, now: float, *, activity: bool = True) -> None:
        """The device sent something (queue mode: it listens now); release what waits for it."""
        self._queue.wake(dev, now, activity=activity)

    def expire_held(self, now: float) -> None:
        self._queue.expire_held(now)

    def end_device(self, dev: Device, reason: str, *, keep_queue: bool = False) -> None:
        """A registration ended or was replaced: drop its observations, fail or keep held requests."""
        self._observations.end(dev)
        self._queue.end(dev, reason, keep_queue=keep_queue)

    def adopt(self, awaitable: Awaitable[Any]) -> None:
        """Deliver to the sink in the background (cancelled at `close`)."""
        self._background.adopt(awaitable)

    async def close(self) -> None:
        await self._background.close()

    def _deliver(self, dev: Device, records: Sequence[Record]) -> None:
        self._receiver.deliver(dev, records)

    # --- operations ----------------------------------------------------------------------------------

    async def send(
        self,
        endpoint: str,
        request: DownlinkRequest[T],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> T:
        return await self._queue.send(endpoint, request, timeout=timeout, deadline=deadline)

    async def read(
        self, endpoint: str, path: Path, *, timeout: float | None = None, deadline: float | None = None
    ) -> list[Record]:
        """Read a resource, instance or object; the Accept follows what the device announced."""
        return await self.send(endpoint, Read(path), timeout=timeout, deadline=deadline)

    async def discover(
        self, endpoint: str, path: Path, *, timeout: float | None = None, deadline: float | None = None
    ) -> list[Link]:
        return await self.send(endpoint, Discover(path), timeout=timeout, deadline=deadline)

    async def write(
        self,
        endpoint: str,
        path: Path,
        records: Sequence[Record],
        *,
        partial: bool = False,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> None:
        """Write: replace (PUT) or, with `partial`, partial update (POST) of an instance."""
        request = Write(path, tuple(records), partial)
        await self.send(endpoint, request, timeout=timeout, deadline=deadline)

    async def execute(
        self,
        endpoint: str,
        path: Path,
        arguments: str | None = None,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> None:
        """Execute a resource, with optional arguments (`0='a',1` per the specification's grammar)."""
        await self.send(endpoint, Execute(path, arguments), timeout=timeout, deadline=deadline)

    async def write_attributes(
        self,
        endpoint: str,
        path: Path,
        attributes: Mapping[str, float | int | None],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> None:
        """Write-Attributes (`pmin`, `pmax`, `gt`, `lt`, `st`, ...); None removes an attribute."""
        request = WriteAttributes.of(path, attributes)
        await self.send(endpoint, request, timeout=timeout, deadline=deadline)

    async def create(
        self,
        endpoint: str,
        object_id: int,
        records: Sequence[Record],
        *,
        instance_id: int | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Path:
        """Create an object instance; returns its path (from Location-Path, or the requested id)."""
        request = Create(object_id, tuple(records), instance_id)
        return await self.send(endpoint, request, timeout=timeout, deadline=deadline)

    async def delete(
        self, endpoint: str, path: Path, *, timeout: float | None = None, deadline: float | None = None
    ) -> None:
        await self.send(endpoint, Delete(path), timeout=timeout, deadline=deadline)

    async def read_composite(
        self,
        endpoint: str,
        paths: Sequence[Path],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> list[Record]:
        """Read-Composite (FETCH); falls back to one Read per path when the device has no composite."""
        return await self.send(endpoint, ReadComposite(tuple(paths)), timeout=timeout, deadline=deadline)

    # --- observations --------------------------------------------------------------------------------

    async def observe(
        self, endpoint: str, path: Path, *, timeout: float | None = None, deadline: float | None = None
    ) -> ObservationHandle:
        """Observe a path; notifications reach the sink as NOTIFY records. Replaces an observation of
        the same path."""
        return await self.send(endpoint, Observe(path), timeout=timeout, deadline=deadline)

    async def observe_composite(
        self,
        endpoint: str,
        paths: Sequence[Path],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> list[ObservationHandle]:
        """Observe-Composite; falls back to one observation per path (several handles). In the fallback a
        path the device refuses (4.04 for an optional resource it lacks) is skipped, not fatal to the others;
        only when every path is refused does the error come back."""
        request = ObserveComposite(tuple(paths))
        return await self.send(endpoint, request, timeout=timeout, deadline=deadline)

    async def cancel_observation(
        self,
        endpoint: str,
        paths: Path | Sequence[Path],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> bool:
        """Cancel an observation (proactively: the same request with Observe=1 and the same token).
        Returns False when no such observation exists. Later notifications are answered with RST."""
        key = (paths,) if isinstance(paths, Path) else tuple(paths)
        obs = self._observations.withdraw(self._queue.device(endpoint), key)
        if obs is None:
            return False
        try:
            return await self.send(endpoint, CancelObservation(obs), timeout=timeout, deadline=deadline)
        except DeviceTimeoutError:
            self._observations.forget(obs)  # reactive cancellation (RST) covers it from here
            return True

    def settle(self, endpoint: str, reg_id: str, settled: bool = True) -> None:
        """The sink says whether its set-up of registration `reg_id` is complete: a restart restores a
        settled registration as it is, and sets up again one whose set-up was interrupted."""
        dev = self._devices.get(endpoint)
        if dev is not None and dev.registration.reg_id == reg_id and dev.settled != settled:
            dev.settled = settled
            self._on_change(endpoint)

    def presence(self, endpoint: str) -> Presence | None:
        """Whether a request for the device would go now, and how many wait for it to wake."""
        return self._queue.presence(endpoint)

    def observations(self, endpoint: str) -> list[tuple[Path, ...]]:
        dev = self._devices.get(endpoint)
        return [] if dev is None else list(dev.observations)

    def notification(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, obs: Observation) -> None:
        """A notification on one of our tokens (hot path)."""
        self._receiver.notification(msg, peer, pktinfo, obs)
