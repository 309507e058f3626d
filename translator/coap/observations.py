"""The observation service: establishes, replaces and cancels observations, and keeps them per device.

Observe and its cancellation are sent raw through the datagram tap so the observation's token is ours
from the first byte: notifications then take the hot path (notifications.py), and a cancellation can
reuse the token (GET/FETCH with Observe=1), which aiocoap's client API cannot do. Leshan keeps the same
seam: its `ObservationService` owns observations, the request sender only sends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from translator.coap import wire
from translator.coap.errors import Code, DeviceResponseError, DeviceTimeoutError
from translator.coap.hotpath import DatagramTap, ExchangeFailed
from translator.coap.negotiation import FORMAT_RETRY, NO_COMPOSITE, composite_formats, read_formats
from translator.coap.requests import (
    OBSERVE_REGISTER,
    CancelObservation,
    Observe,
    ObserveComposite,
    observe_message,
)
from translator.coap.settings import CoapSettings
from translator.coap.state import Device, Observation, ObservationHandle
from translator.lwm2m import Path, Record
from translator.ops.logs import device_log

log = logging.getLogger(__name__)


class _NoComposite(Exception):
    """The device has no Observe-Composite (it said so, or did not answer): observe path by path."""


class ObservationService:
    def __init__(
        self,
        *,
        settings: CoapSettings,
        tap: DatagramTap,
        deliver: Callable[[Device, Sequence[Record]], None],
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._tap = tap
        self._deliver = deliver  # the first answer's values go to the sink like a notification's
        self._clock = clock
        self._wallclock = wallclock
        # Told when a device's set of observations changed, so what survives a restart follows.
        self._on_change = on_change or (lambda _endpoint: None)

    async def observe(self, dev: Device, request: Observe) -> ObservationHandle:
        return await self._establish(dev, (request.path,), composite=False)

    async def observe_composite(self, dev: Device, request: ObserveComposite) -> list[ObservationHandle]:
        """In the fallback a path the device refuses (4.04 for an optional resource it lacks) is skipped,
        not fatal to the others; only when every path is refused does the error come back."""
        reg = dev.registration
        if dev.composite is not False and composite_formats(reg.version_tuple, reg.objects.content_formats):
            try:
                return [await self._establish(dev, request.paths, composite=True)]
            except _NoComposite:
                pass
        handles: list[ObservationHandle] = []
        refused: DeviceResponseError | None = None
        for p in request.paths:
            try:
                handles.append(await self._establish(dev, (p,), composite=False))
            except DeviceResponseError as exc:
                device_log(log, reg.device_id).info(
                    "endpoint=%s: observe %s refused: %s", reg.endpoint, p, exc
                )
                refused = exc
        if refused is not None and not handles:
            raise refused
        return handles

    def withdraw(self, dev: Device, paths: tuple[Path, ...]) -> Observation | None:
        """Stop taking notifications of the observation of `paths` (None when there is none); its
        cancellation request is sent by `cancel`."""
        obs = dev.observations.pop(paths, None)
        if obs is not None:
            obs.cancelled = True
            self._on_change(dev.registration.endpoint)
        return obs

    async def cancel(self, dev: Device, request: CancelObservation) -> bool:
        obs = request.observation
        message = request.message()
        try:
            await self._tap.request(
                dev.registration.peer, message.code, message.options(), message.payload, token=obs.token
            )
        except ExchangeFailed:
            pass  # the device forgot it already (RST): cancelled either way
        finally:
            self._tap.forget_token(obs.token)
        return True

    def forget(self, obs: Observation) -> None:
        """Answer later notifications of `obs` with RST (reactive cancellation)."""
        self._tap.forget_token(obs.token)

    def end(self, dev: Device) -> None:
        """The registration ended: its observations with it (later notifications get RST)."""
        for obs in dev.observations.values():
            obs.cancelled = True
            self._tap.forget_token(obs.token)
        dev.observations.clear()

    def ended_by_device(self, dev: Device, obs: Observation) -> None:
        """The device answered a notification with an error code: the observation is over."""
        dev.observations.pop(obs.paths, None)
        self._tap.forget_token(obs.token)
        self._on_change(obs.endpoint)

    # --- establishing ------------------------------------------------------------------------------

    def _candidates(self, dev: Device, paths: tuple[Path, ...], composite: bool) -> list[int]:
        reg = dev.registration
        if composite:
            return composite_formats(reg.version_tuple, reg.objects.content_formats)
        formats = read_formats(reg.version_tuple, reg.objects.content_formats, paths[0])
        return dev.preferred(f"read{len(paths[0])}", formats)

    async def _establish(self, dev: Device, paths: tuple[Path, ...], *, composite: bool) -> ObservationHandle:
        """Observe `paths`, replacing an observation of the same paths. Raises _NoComposite (composite
        only) when the device has no Observe-Composite."""
        reg = dev.registration
        old = self.withdraw(dev, paths)
        if old is not None:
            self._tap.forget_token(old.token)
        last: DeviceResponseError | None = None
        for cf in self._candidates(dev, paths, composite):
            token = self._tap.new_token()
            obs = Observation(reg.endpoint, reg.reg_id, paths, token, cf, composite)
            self._tap.observe_token(token, obs)
            message = observe_message(paths, composite, cf, OBSERVE_REGISTER)
            try:
                if composite:
                    try:
                        async with asyncio.timeout(self._settings.composite_timeout):
                            response = await self._tap.request(
                                reg.peer, message.code, message.options(), message.payload, token=token
                            )
                    except TimeoutError:
                        device_log(log, reg.device_id).info(
                            "endpoint=%s: no answer to Observe-Composite, falling back", reg.endpoint
                        )
                        dev.composite = False
                        raise _NoComposite from None
                else:
                    response = await self._tap.request(reg.peer, message.code, message.options(), token=token)
            except ExchangeFailed as exc:
                self._tap.forget_token(token)
                raise DeviceTimeoutError(reg.endpoint, f"observe: {exc}") from None
            except BaseException:
                self._tap.forget_token(token)
                raise
            code = response.code
            if code in FORMAT_RETRY:
                self._tap.forget_token(token)
                last = DeviceResponseError(reg.endpoint, code, f"Accept {cf}")
                continue
            if composite and code in NO_COMPOSITE:
                self._tap.forget_token(token)
                dev.composite = False
                raise _NoComposite
            if not (64 <= code < 96):
                self._tap.forget_token(token)
                raise DeviceResponseError(
                    reg.endpoint, code, response.payload[:120].decode("utf-8", "replace")
                )
            return self._established(dev, obs, response, cf)
        raise last or DeviceResponseError(reg.endpoint, Code.NOT_ACCEPTABLE, "no common content format")

    def _established(
        self, dev: Device, obs: Observation, response: wire.Datagram, requested: int
    ) -> ObservationHandle:
        reg = dev.registration
        got = response.content_format if response.content_format is not None else obs.content_format
        obs.content_format = got
        records = dev.decode_answer(
            got, response.payload, obs.base, now=self._wallclock(), max_payload=self._settings.max_payload
        )
        if response.observe is None:
            self._tap.forget_token(obs.token)
            device_log(log, reg.device_id).info(
                "endpoint=%s: %s answered without Observe: not observable", reg.endpoint, obs.paths
            )
        else:
            obs.seq.accept(response.observe, self._clock())
            dev.observations[obs.paths] = obs
            self._on_change(reg.endpoint)
            if obs.composite:
                dev.composite = True
            else:
                dev.formats[f"read{len(obs.paths[0])}"] = requested
        self._deliver(dev, records)
        device_log(log, reg.device_id).info(
            "endpoint=%s: observing %s", reg.endpoint, ",".join(map(str, obs.paths))
        )
        return ObservationHandle(reg.endpoint, obs.paths, obs.token, got, tuple(records), obs.composite)
