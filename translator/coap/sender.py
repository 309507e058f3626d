"""The plain downlink sender: does one typed request's exchange with a device, now, within a timeout.

Requests go through aiocoap (retransmission, block-wise), except Execute, which is sent raw through the
datagram tap: it is not idempotent, and only the tap's exchange stops retransmitting when its deadline
passes (aiocoap's goes on after a cancel). Observe requests go to the observation service. Content formats
are tried in the order negotiation.py gives, the one that worked first next time. Queue mode is not this
module's business: `queuemode.QueueModeSender` decorates this sender.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import aiocoap
from aiocoap.numbers.codes import Code as AioCode

from translator.coap.errors import (
    Code,
    DevicePayloadError,
    DeviceResponseError,
    DeviceTimeoutError,
    RegistrationEndedError,
)
from translator.coap.hotpath import DatagramTap, ExchangeFailed
from translator.coap.negotiation import (
    FORMAT_RETRY,
    NO_COMPOSITE,
    composite_formats,
    read_formats,
    write_formats,
)
from translator.coap.observations import ObservationService
from translator.coap.requests import (
    CancelObservation,
    CoapMessage,
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
from translator.coap.settings import CoapSettings
from translator.coap.state import Device, ObservationHandle
from translator.lwm2m import Link, Lwm2mFormatError, Path, Record, parse_links
from translator.ops.logs import device_log

log = logging.getLogger(__name__)
T = TypeVar("T")


class DownlinkSender:
    """Sends typed requests to registered devices (the `Performer` of requests.py)."""

    def __init__(
        self,
        *,
        settings: CoapSettings,
        tap: DatagramTap,
        observations: ObservationService,
        wallclock: Callable[[], float] = time.time,
        lifetime_written: Callable[[str, int], None] | None = None,
    ) -> None:
        self._settings = settings
        self._tap = tap
        self._observations = observations
        self._wallclock = wallclock
        self._lifetime_written = lifetime_written
        self._context: Any = None
        self._interface: Any = None
        self._remote_cls: Any = None

    def bind(self, context: Any, interface: Any) -> None:
        from aiocoap.transports.udp6 import UDP6EndpointAddress

        self._context = context
        self._interface = interface
        self._remote_cls = UDP6EndpointAddress

    async def send(self, dev: Device, request: DownlinkRequest[T], timeout: float) -> T:
        """Do `request`'s exchange with `dev`; DeviceTimeoutError when it takes longer than `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                return await request.perform(self, dev)
        except TimeoutError:
            endpoint = dev.registration.endpoint
            raise DeviceTimeoutError(endpoint, f"{request.name}: no answer within {timeout:g}s") from None

    # --- the exchange ------------------------------------------------------------------------------

    async def _request(self, dev: Device, message: CoapMessage) -> Any:
        if self._context is None:
            raise RegistrationEndedError(dev.registration.endpoint, "server not running")
        msg = aiocoap.Message(code=AioCode(message.code), payload=message.payload)
        msg.opt.uri_path = message.segments
        if message.query:
            msg.opt.uri_query = message.query
        if message.accept is not None:
            msg.opt.accept = message.accept
        if message.content_format is not None:
            msg.opt.content_format = message.content_format
        msg.remote = self._remote_cls(dev.registration.peer, self._interface)
        request = self._context.request(msg)
        try:
            response = await request.response
        except asyncio.CancelledError:
            request.response.cancel()
            raise
        except aiocoap.error.Error as exc:
            raise DeviceTimeoutError(dev.registration.endpoint, f"{message.code.name}: {exc}") from None
        return response

    def _check(self, dev: Device, response: Any, name: str) -> None:
        if not response.code.is_successful():
            reason = bytes(response.payload[:120]).decode("utf-8", "replace")
            raise DeviceResponseError(dev.registration.endpoint, int(response.code), reason or name)

    def _decode(self, dev: Device, response: Any, requested: int, base: Path) -> list[Record]:
        got = response.opt.content_format
        cf = requested if got is None else int(got)
        now = self._wallclock()
        return dev.decode_answer(cf, response.payload, base, now=now, max_payload=self._settings.max_payload)

    # --- operations (Performer) --------------------------------------------------------------------

    async def read(self, dev: Device, request: Read) -> list[Record]:
        reg = dev.registration
        last: DeviceResponseError | None = None
        candidates = read_formats(reg.version_tuple, reg.objects.content_formats, request.path)
        for cf in dev.preferred(request.kind, candidates):
            response = await self._request(dev, request.message(cf))
            if int(response.code) in FORMAT_RETRY:
                last = DeviceResponseError(reg.endpoint, int(response.code), f"Accept {cf}")
                continue
            self._check(dev, response, request.name)
            dev.formats[request.kind] = cf
            return self._decode(dev, response, cf, request.path)
        raise last or DeviceResponseError(reg.endpoint, Code.NOT_ACCEPTABLE, "no common content format")

    async def discover(self, dev: Device, request: Discover) -> list[Link]:
        response = await self._request(dev, request.message())
        self._check(dev, response, request.name)
        try:
            return parse_links(bytes(response.payload))
        except Lwm2mFormatError as exc:
            endpoint = dev.registration.endpoint
            raise DevicePayloadError(endpoint, f"bad discover answer: {exc.reason}") from None

    async def write(self, dev: Device, request: Write) -> None:
        reg = dev.registration
        last: DeviceResponseError | None = None
        candidates = write_formats(
            reg.version_tuple, reg.objects.content_formats, request.path, request.single
        )
        for cf in dev.preferred(request.kind, candidates):
            try:
                message = request.message(cf, dev.lookup)
            except Lwm2mFormatError:
                continue
            response = await self._request(dev, message)
            if int(response.code) in FORMAT_RETRY:
                last = DeviceResponseError(reg.endpoint, int(response.code), f"Content-Format {cf}")
                continue
            self._check(dev, response, request.name)
            dev.formats[request.kind] = cf
            lifetime = request.lifetime
            if lifetime is not None and self._lifetime_written is not None:
                self._lifetime_written(reg.endpoint, lifetime)
            return
        raise last or DevicePayloadError(
            reg.endpoint, f"{request.name}: records fit no format the device takes"
        )

    async def execute(self, dev: Device, request: Execute) -> None:
        # Sent raw through the tap, not aiocoap: when the deadline passes the tap's exchange stops
        # retransmitting, while aiocoap 0.4 keeps retransmitting a cancelled request, and a client
        # without duplicate detection runs every retransmitted Execute again (a reboot after the 504).
        message = request.message()
        reg = dev.registration
        try:
            response = await self._tap.request(reg.peer, message.code, message.options(), message.payload)
        except ExchangeFailed as exc:
            raise DeviceTimeoutError(reg.endpoint, f"{request.name}: {exc}") from None
        if not 64 <= response.code < 96:
            reason = response.payload[:120].decode("utf-8", "replace")
            raise DeviceResponseError(reg.endpoint, response.code, reason or request.name)

    async def write_attributes(self, dev: Device, request: WriteAttributes) -> None:
        response = await self._request(dev, request.message())
        self._check(dev, response, request.name)

    async def create(self, dev: Device, request: Create) -> Path:
        reg = dev.registration
        last: DeviceResponseError | None = None
        for cf in write_formats(reg.version_tuple, reg.objects.content_formats, request.target, False):
            try:
                message = request.message(cf, dev.lookup)
            except Lwm2mFormatError:
                continue
            response = await self._request(dev, message)
            if int(response.code) in FORMAT_RETRY:
                last = DeviceResponseError(reg.endpoint, int(response.code), f"Content-Format {cf}")
                continue
            self._check(dev, response, request.name)
            return request.created(response.opt.location_path)
        raise last or DevicePayloadError(reg.endpoint, "create: records fit no format the device takes")

    async def delete(self, dev: Device, request: Delete) -> None:
        response = await self._request(dev, request.message())
        self._check(dev, response, request.name)

    async def read_composite(self, dev: Device, request: ReadComposite) -> list[Record]:
        reg = dev.registration
        if dev.composite is not False:
            for cf in composite_formats(reg.version_tuple, reg.objects.content_formats):
                try:
                    async with asyncio.timeout(self._settings.composite_timeout):
                        response = await self._request(dev, request.message(cf))
                except (TimeoutError, DeviceTimeoutError):
                    device_log(log, reg.device_id).info(
                        "endpoint=%s: no answer to Read-Composite, falling back", reg.endpoint
                    )
                    dev.composite = False
                    break
                code = int(response.code)
                if code in FORMAT_RETRY:
                    continue
                if code in NO_COMPOSITE:
                    dev.composite = False
                    break
                self._check(dev, response, request.name)
                dev.composite = True
                return self._decode(dev, response, cf, Path())
        out: list[Record] = []
        for p in request.paths:
            out.extend(await self.read(dev, Read(p)))
        return out

    async def observe(self, dev: Device, request: Observe) -> ObservationHandle:
        return await self._observations.observe(dev, request)

    async def observe_composite(self, dev: Device, request: ObserveComposite) -> list[ObservationHandle]:
        return await self._observations.observe_composite(dev, request)

    async def cancel_observation(self, dev: Device, request: CancelObservation) -> bool:
        return await self._observations.cancel(dev, request)
