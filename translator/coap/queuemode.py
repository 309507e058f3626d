"""The queue-mode sender: decorates the plain downlink sender for devices that sleep (binding `Q`).

A request for a device that listens goes straight to the plain sender. One for a queue-mode device that
does not listen now is held (queue.py decides, purely) until the device sends something, for at most the
request's `deadline`; then the held requests go in order. This is Leshan's seam too: its
`QueueModeLwM2mRequestSender` wraps the `DownlinkRequestSender` and asks the presence service; ours holds
instead of refusing, because an IoT Central command may wait for the device's next wake-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from translator.coap.errors import (
    DeadlineExpiredError,
    DownlinkError,
    NotRegisteredError,
    RegistrationEndedError,
    ServerRefusedError,
)
from translator.coap.queue import must_hold, should_flush
from translator.coap.requests import DownlinkRequest
from translator.coap.settings import CoapSettings
from translator.coap.state import Device, Held
from translator.lwm2m import Lwm2mFormatError
from translator.ops.logs import device_log

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Presence:
    """A device as the queue-mode sender sees it now (operators' and tests' view)."""

    listening: bool  # a request would go now (a queue-mode device within its awake window)
    held: int  # requests waiting for it to wake


class Sender(Protocol):
    """What the queue-mode sender decorates: sends now, bounded by `timeout` (sender.DownlinkSender)."""

    async def send(self, dev: Device, request: DownlinkRequest[T], timeout: float) -> T: ...


class QueueModeSender:
    def __init__(
        self,
        inner: Sender,
        *,
        settings: CoapSettings,
        devices: Mapping[str, Device],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._settings = settings
        self._devices = devices
        self._clock = clock
        # Endpoints that hold requests for a sleeping device: the housekeeping tick looks only at these,
        # not at every registered device (at 10k devices the full walk was most of the idle CPU).
        self._holding: set[str] = set()

    def device(self, endpoint: str) -> Device:
        dev = self._devices.get(endpoint)
        if dev is None:
            raise NotRegisteredError(endpoint, "not registered")
        return dev

    def presence(self, endpoint: str) -> Presence | None:
        """None when `endpoint` is not registered."""
        dev = self._devices.get(endpoint)
        if dev is None:
            return None
        now = self._clock()
        return Presence(not must_hold(dev.registration.queue_mode, dev.queue, now), len(dev.queue))

    async def send(
        self, endpoint: str, request: DownlinkRequest[T], *, timeout: float | None, deadline: float | None
    ) -> T:
        """Send `request` now, or hold it until a queue-mode device wakes (up to `deadline` seconds);
        `timeout` bounds the exchange itself."""
        problem = request.refusal()
        if problem is not None:
            raise ServerRefusedError(endpoint, f"{request.name}: {problem}")
        dev = self.device(endpoint)
        bound = self._settings.request_timeout if timeout is None else timeout
        now = self._clock()
        if not must_hold(dev.registration.queue_mode, dev.queue, now):
            return await self._inner.send(dev, request, bound)
        wait = self._settings.queue_deadline if deadline is None else deadline
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        held = Held(request, bound, future)
        dev.queue.hold(held, now + wait)
        self._holding.add(endpoint)
        device_log(log, dev.registration.device_id).info(
            "endpoint=%s: %s held for queue mode (deadline %.1fs)", endpoint, request.name, wait
        )
        self.wake(dev, now, activity=False)
        try:
            async with asyncio.timeout(wait + bound + self._settings.tick + 1.0):
                return await future
        except TimeoutError:
            raise DeadlineExpiredError(endpoint, f"{request.name}: device did not wake in time") from None
        finally:
            current = self._devices.get(endpoint)
            if current is not None:
                current.queue.remove(held)

    def wake(self, dev: Device, now: float, *, activity: bool = True) -> None:
        """The device sent something (queue mode: it listens now); release what waits for it."""
        if activity:
            dev.queue.note_activity(now)
        flushing = dev.flusher is not None and not dev.flusher.done()
        if should_flush(dev.queue, now, flushing=flushing):
            dev.flusher = asyncio.get_running_loop().create_task(
                self._flush(dev), name=f"coap-flush-{dev.registration.endpoint}"
            )

    async def _flush(self, dev: Device) -> None:
        endpoint = dev.registration.endpoint
        while True:
            held = dev.queue.next_ready(self._clock())
            if held is None:
                return
            if held.future.done():
                continue
            try:
                # Looked up again: the registration may have been replaced while the request waited.
                result: Any = await self._inner.send(self.device(endpoint), held.request, held.timeout)
            except (DownlinkError, Lwm2mFormatError) as exc:
                if not held.future.done():
                    held.future.set_exception(exc)
            except Exception as exc:  # keep flushing the rest
                device_log(log, dev.registration.device_id).exception(
                    "endpoint=%s: queued %s failed", endpoint, held.request.name
                )
                if not held.future.done():
                    held.future.set_exception(exc)
            else:
                if not held.future.done():
                    held.future.set_result(result)

    def expire_held(self, now: float) -> None:
        for endpoint in list(self._holding):
            dev = self._devices.get(endpoint)
            if dev is None or not len(dev.queue):
                self._holding.discard(endpoint)
                continue
            for held in dev.queue.expired(now):
                if not held.future.done():
                    name = held.request.name
                    device_log(log, dev.registration.device_id).info(
                        "endpoint=%s: %s expired in the queue", endpoint, name
                    )
                    held.future.set_exception(
                        DeadlineExpiredError(endpoint, f"{name}: device did not wake before the deadline")
                    )

    def end(self, dev: Device, reason: str, *, keep_queue: bool) -> None:
        """The registration ended or was replaced: stop releasing, and fail the held requests unless a new
        registration of the device takes them over."""
        if dev.flusher is not None:
            dev.flusher.cancel()
            dev.flusher = None
        if not keep_queue:
            for held in dev.queue.drain():
                if not held.future.done():
                    held.future.set_exception(
                        RegistrationEndedError(dev.registration.endpoint, f"{held.request.name}: {reason}")
                    )
