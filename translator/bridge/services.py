"""What a device's life and its collaborators are given instead of the bridge: the device as they see it
(`DeviceView`), the deadlines of downlinks and commands (`Deadlines`), and the bridge's shared parts a life
needs (`DeviceServices`). Each collaborator takes only the few of these it uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from translator.bridge.pacing import SetupLimiter
from translator.bridge.sweep import DirectSweep
from translator.coap import DeviceManager, Registration
from translator.codec import Codec, DeviceMapper
from translator.lwm2m.registry import ObjectRegistry
from translator.ops.metrics import Metrics
from translator.store import Store

Spawn = Callable[[Awaitable[Any], str], "asyncio.Task[Any]"]  # a task the device's life owns and ends


class DeviceView(Protocol):
    """A device as its collaborators read it: what it is now (its codec may change on a re-Register)."""

    @property
    def device_id(self) -> str: ...

    @property
    def endpoint(self) -> str: ...

    @property
    def codec(self) -> Codec | None: ...

    @property
    def mapper(self) -> DeviceMapper | None: ...

    @property
    def registration(self) -> Registration | None: ...


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Deadlines are points in time on `clock`; the CoAP face's downlinks take `deadline=` as how long a
    request may wait for a sleeping device, so `within` turns a point into the seconds left."""

    clock: Callable[[], float]
    queue: float  # coap.queue_deadline: static reads, observations and writes wait this long at most
    command: float  # iotc.command_deadline: a method answers before IoT Central gives up

    def downlink(self) -> float:
        return self.clock() + self.queue

    def for_command(self) -> float:
        return self.clock() + self.command

    def within(self, deadline: float) -> float:
        return max(0.0, deadline - self.clock())


@dataclass(frozen=True, slots=True)
class DeviceServices:
    """The bridge's parts every device's life uses; built once by the bridge."""

    store: Store
    metrics: Metrics
    downlinks: DeviceManager
    deadlines: Deadlines
    setup_limiter: SetupLimiter
    sweep: DirectSweep
    registry: ObjectRegistry
    telemetry_timeout: float
    # On a shared store: whether this node still owns the device (the fence of consuming actions, cluster.md)
    still_mine: Callable[[str], Awaitable[bool]]
