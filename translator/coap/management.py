"""Device management (server → device) and the observation service.

Every operation is `await manager.op(endpoint, ..., timeout=None, deadline=None)`: `timeout` bounds the
exchange with the device, `deadline` (queue mode) bounds how long the request may wait for a sleeping
device. Results are typed values; failures are `DownlinkError`s (see errors.py).

Requests go through aiocoap (retransmission, block-wise), except Observe and its cancellation, which are
sent raw through the datagram tap so the observation's token is ours from the first byte: notifications
then take the hot path, and a cancellation can reuse the token (GET/FETCH with Observe=1), which
aiocoap's client API cannot do. Execute is sent raw too: it is not idempotent, and only the tap's
exchange stops retransmitting when its deadline passes (aiocoap's goes on after a cancel).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiocoap
from aiocoap.numbers.codes import Code as AioCode

from translator.coap import wire
from translator.coap.dedup import DedupCache
from translator.coap.errors import (
    BackPressure,
    Code,
    DeadlineExpiredError,
    DevicePayloadError,
    DeviceResponseError,
    DeviceTimeoutError,
    DownlinkError,
    NotRegisteredError,
    RegistrationEndedError,
    ServerRefusedError,
)
from translator.coap.hotpath import DatagramTap, ExchangeFailed
from translator.coap.lifetime import lifetime_problem, written_lifetime
from translator.coap.negotiation import composite_formats, read_formats, write_formats
from translator.coap.observe import ObservationSequence
from translator.coap.queue import DownlinkQueue
from translator.coap.registration import Peer, Registration
from translator.coap.responder import Responder
from translator.coap.settings import CoapSettings
from translator.coap.sink import TelemetrySink, TelemetrySource
from translator.lwm2m import (
    ContentFormat,
    Link,
    Lwm2mFormatError,
    Path,
    Record,
    ResourceLookup,
    decode,
    encode,
    parse_links,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Device answers after which another content format is worth a try.
_FORMAT_RETRY = frozenset({Code.NOT_ACCEPTABLE, Code.UNSUPPORTED_CONTENT_FORMAT})
# Answers meaning "no composite operations here": fall back to single operations.
_NO_COMPOSITE = frozenset(
    {Code.BAD_REQUEST, Code.METHOD_NOT_ALLOWED, Code.NOT_FOUND, Code.NOT_IMPLEMENTED, Code.BAD_OPTION}
)
_ATTRIBUTES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "edge", "con", "hqmax")


@dataclass(frozen=True, slots=True)
class ObservationHandle:
    """An established observation. `records` are the values of its first response (also delivered to
    the sink as NOTIFY)."""

    endpoint: str
    paths: tuple[Path, ...]
    token: bytes
    content_format: int
    records: tuple[Record, ...]
    composite: bool = False


@dataclass(slots=True)
class Observation:
    endpoint: str
    reg_id: str
    paths: tuple[Path, ...]
    token: bytes
    content_format: int
    composite: bool
    seq: ObservationSequence = field(default_factory=ObservationSequence)
    cancelled: bool = False

    @property
    def base(self) -> Path:
        return self.paths[0] if len(self.paths) == 1 and not self.composite else Path()


@dataclass(slots=True)
class Held:
    name: str
    op: Callable[[], Awaitable[Any]]
    timeout: float
    future: asyncio.Future[Any]


@dataclass(slots=True)
class Device:
    """The shell's state for one registered endpoint."""

    registration: Registration
    lookup: ResourceLookup
    queue: DownlinkQueue[Held]
    observations: dict[tuple[Path, ...], Observation] = field(default_factory=dict)
    formats: dict[str, int] = field(default_factory=dict)  # what worked, by operation kind
    composite: bool | None = None  # None: not tried yet
    flusher: asyncio.Task[None] | None = None
    settled: bool = False  # the sink finished setting this registration up (kept across a restart)


def _aio_code(code: int) -> Any:
    return AioCode(code)


def _path_segments(path: Path) -> tuple[str, ...]:
    return tuple(str(s) for s in path)


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
        self._settings = settings
        self._lifetime_written = lifetime_written
        # Told when a device's set of observations changed, so what survives a restart follows.
        self._on_change = on_change or (lambda _endpoint: None)
        self._sink = sink
        self._devices = devices
        # Endpoints that hold requests for a sleeping device: the housekeeping tick looks only at these,
        # not at every registered device (at 10k devices the full walk was most of the idle CPU).
        self._holding: set[str] = set()
        self._tap = tap
        self._dedup = dedup
        self._clock = clock
        self._wallclock = wallclock
        self._context: Any = None
        self._interface: Any = None
        self._remote_cls: Any = None
        self._responder = responder
        self._background: set[asyncio.Future[Any]] = set()

    def bind(self, context: Any, interface: Any) -> None:
        from aiocoap.transports.udp6 import UDP6EndpointAddress

        self._context = context
        self._interface = interface
        self._remote_cls = UDP6EndpointAddress

    # --- plumbing ----------------------------------------------------------------------------------

    def _device(self, endpoint: str) -> Device:
        dev = self._devices.get(endpoint)
        if dev is None:
            raise NotRegisteredError(endpoint, "not registered")
        return dev

    async def _submit(
        self,
        endpoint: str,
        name: str,
        op: Callable[[Device], Awaitable[T]],
        timeout: float | None,
        deadline: float | None,
    ) -> T:
        """Run `op` now, or hold it until a queue-mode device wakes (up to `deadline` seconds)."""
        dev = self._device(endpoint)
        bound = self._settings.request_timeout if timeout is None else timeout
        now = self._clock()
        if not dev.registration.queue_mode or (dev.queue.is_awake(now) and not len(dev.queue)):
            return await self._run(endpoint, name, lambda: op(dev), bound)
        wait = self._settings.queue_deadline if deadline is None else deadline
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        held = Held(name, lambda: op(self._device(endpoint)), bound, future)
        dev.queue.hold(held, now + wait)
        self._holding.add(endpoint)
        log.info(
            "endpoint=%s device=%s: %s held for queue mode (deadline %.1fs)",
            endpoint,
            dev.registration.device_id,
            name,
            wait,
        )
        self.wake(dev, now, activity=False)
        try:
            async with asyncio.timeout(wait + bound + self._settings.tick + 1.0):
                return await future
        except TimeoutError:
            raise DeadlineExpiredError(endpoint, f"{name}: device did not wake in time") from None
        finally:
            current = self._devices.get(endpoint)
            if current is not None:
                current.queue.remove(held)

    async def _run(self, endpoint: str, name: str, op: Callable[[], Awaitable[T]], timeout: float) -> T:
        try:
            async with asyncio.timeout(timeout):
                return await op()
        except TimeoutError:
            raise DeviceTimeoutError(endpoint, f"{name}: no answer within {timeout:g}s") from None

    def wake(self, dev: Device, now: float, *, activity: bool = True) -> None:
        """The device sent something (queue mode: it listens now); release what waits for it."""
        if activity:
            dev.queue.note_activity(now)
        if len(dev.queue) and dev.queue.is_awake(now) and (dev.flusher is None or dev.flusher.done()):
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
                result = await self._run(endpoint, held.name, held.op, held.timeout)
            except (DownlinkError, Lwm2mFormatError) as exc:
                if not held.future.done():
                    held.future.set_exception(exc)
            except Exception as exc:  # keep flushing the rest
                log.exception("endpoint=%s: queued %s failed", endpoint, held.name)
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
                    log.info(
                        "endpoint=%s device=%s: %s expired in the queue",
                        endpoint,
                        dev.registration.device_id,
                        held.name,
                    )
                    held.future.set_exception(
                        DeadlineExpiredError(
                            endpoint, f"{held.name}: device did not wake before the deadline"
                        )
                    )

    def end_device(self, dev: Device, reason: str, *, keep_queue: bool = False) -> None:
        """A registration ended or was replaced: drop its observations, fail or keep held requests."""
        for obs in dev.observations.values():
            obs.cancelled = True
            self._tap.forget_token(obs.token)
        dev.observations.clear()
        if dev.flusher is not None:
            dev.flusher.cancel()
            dev.flusher = None
        if not keep_queue:
            for held in dev.queue.drain():
                if not held.future.done():
                    held.future.set_exception(
                        RegistrationEndedError(dev.registration.endpoint, f"{held.name}: {reason}")
                    )

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(self._background, timeout=2.0)

    def adopt(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background sink delivery failed: %r", task.exception())

    def deliver(self, dev: Device, records: Sequence[Record]) -> None:
        """Hand records of a response (first observe answer) to the sink, not waiting."""
        if not records:
            return
        try:
            result = self._sink.on_records(
                dev.registration.identity, records, TelemetrySource.NOTIFY, confirmable=False
            )
        except Exception:
            log.exception("endpoint=%s: sink refused records", dev.registration.endpoint)
            return
        if isinstance(result, Awaitable):
            self.adopt(result)

    # --- aiocoap requests --------------------------------------------------------------------------

    async def _request(
        self,
        dev: Device,
        code: Code,
        path: Path,
        *,
        query: Sequence[str] = (),
        accept: int | None = None,
        content_format: int | None = None,
        payload: bytes = b"",
    ) -> Any:
        if self._context is None:
            raise RegistrationEndedError(dev.registration.endpoint, "server not running")
        msg = aiocoap.Message(code=_aio_code(code), payload=payload)
        msg.opt.uri_path = _path_segments(path)
        if query:
            msg.opt.uri_query = tuple(query)
        if accept is not None:
            msg.opt.accept = accept
        if content_format is not None:
            msg.opt.content_format = content_format
        msg.remote = self._remote_cls(dev.registration.peer, self._interface)
        request = self._context.request(msg)
        try:
            response = await request.response
        except asyncio.CancelledError:
            request.response.cancel()
            raise
        except aiocoap.error.Error as exc:
            raise DeviceTimeoutError(dev.registration.endpoint, f"{code.name}: {exc}") from None
        return response

    def _check(self, dev: Device, response: Any, name: str) -> None:
        if not response.code.is_successful():
            reason = bytes(response.payload[:120]).decode("utf-8", "replace")
            raise DeviceResponseError(dev.registration.endpoint, int(response.code), reason or name)

    def _decode(self, dev: Device, cf: int, payload: bytes, base: Path) -> list[Record]:
        try:
            return decode(
                cf,
                bytes(payload),
                base_path=base,
                registry=dev.lookup,
                now=self._wallclock(),
                max_payload=self._settings.max_payload,
            )
        except Lwm2mFormatError as exc:
            raise DevicePayloadError(dev.registration.endpoint, f"undecodable answer: {exc.reason}") from None

    def _formats(self, dev: Device, kind: str, candidates: list[int]) -> list[int]:
        known = dev.formats.get(kind)
        if known is not None and known in candidates:
            return [known, *(c for c in candidates if c != known)]
        return candidates

    # --- operations --------------------------------------------------------------------------------

    async def read(
        self, endpoint: str, path: Path, *, timeout: float | None = None, deadline: float | None = None
    ) -> list[Record]:
        """Read a resource, instance or object; the Accept follows what the device announced."""
        return await self._submit(
            endpoint, f"read {path}", lambda dev: self._read(dev, path), timeout, deadline
        )

    async def _read(self, dev: Device, path: Path) -> list[Record]:
        reg = dev.registration
        kind = f"read{len(path)}"
        last: DeviceResponseError | None = None
        for cf in self._formats(
            dev, kind, read_formats(reg.version_tuple, reg.objects.content_formats, path)
        ):
            response = await self._request(dev, Code.GET, path, accept=cf)
            if int(response.code) in _FORMAT_RETRY:
                last = DeviceResponseError(reg.endpoint, int(response.code), f"Accept {cf}")
                continue
            self._check(dev, response, f"read {path}")
            dev.formats[kind] = cf
            got = response.opt.content_format
            return self._decode(dev, cf if got is None else int(got), response.payload, path)
        raise last or DeviceResponseError(reg.endpoint, Code.NOT_ACCEPTABLE, "no common content format")

    async def discover(
        self, endpoint: str, path: Path, *, timeout: float | None = None, deadline: float | None = None
    ) -> list[Link]:
        async def op(dev: Device) -> list[Link]:
            response = await self._request(dev, Code.GET, path, accept=ContentFormat.LINK_FORMAT)
            self._check(dev, response, f"discover {path}")
            try:
                return parse_links(bytes(response.payload))
            except Lwm2mFormatError as exc:
                raise DevicePayloadError(endpoint, f"bad discover answer: {exc.reason}") from None

        return await self._submit(endpoint, f"discover {path}", op, timeout, deadline)

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
        code = Code.POST if partial else Code.PUT
        name = f"{'write-update' if partial else 'write'} {path}"
        lifetime = written_lifetime(path, records)
        problem = None if lifetime is None else lifetime_problem(lifetime)
        if problem is not None:
            raise ServerRefusedError(
                endpoint, f"{name}: {problem}, which this server would refuse at Register"
            )

        async def op(dev: Device) -> None:
            reg = dev.registration
            single = len(records) == 1 and len(path) >= 3
            kind = f"write{len(path)}{int(single)}"
            last: DeviceResponseError | None = None
            candidates = write_formats(reg.version_tuple, reg.objects.content_formats, path, single)
            for cf in self._formats(dev, kind, candidates):
                try:
                    payload = encode(cf, records, base_path=path, registry=dev.lookup)
                except Lwm2mFormatError:
                    continue
                response = await self._request(dev, code, path, content_format=cf, payload=payload)
                if int(response.code) in _FORMAT_RETRY:
                    last = DeviceResponseError(endpoint, int(response.code), f"Content-Format {cf}")
                    continue
                self._check(dev, response, name)
                dev.formats[kind] = cf
                if lifetime is not None and self._lifetime_written is not None:
                    self._lifetime_written(endpoint, lifetime)
                return
            raise last or DevicePayloadError(endpoint, f"{name}: records fit no format the device takes")

        await self._submit(endpoint, name, op, timeout, deadline)

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
        if len(path) != 3:
            raise ValueError("Execute targets a resource /o/i/r")

        async def op(dev: Device) -> None:
            # Sent raw through the tap, not aiocoap: when the deadline passes the tap's exchange stops
            # retransmitting, while aiocoap 0.4 keeps retransmitting a cancelled request, and a client
            # without duplicate detection runs every retransmitted Execute again (a reboot after the 504).
            payload = arguments.encode() if arguments else b""
            options = wire.path_options(_path_segments(path))
            if payload:
                options.append((wire.OPT_CONTENT_FORMAT, wire.uint(ContentFormat.TEXT)))
            reg = dev.registration
            try:
                response = await self._tap.request(reg.peer, Code.POST, options, payload)
            except ExchangeFailed as exc:
                raise DeviceTimeoutError(reg.endpoint, f"execute {path}: {exc}") from None
            if not 64 <= response.code < 96:
                reason = response.payload[:120].decode("utf-8", "replace")
                raise DeviceResponseError(reg.endpoint, response.code, reason or f"execute {path}")

        await self._submit(endpoint, f"execute {path}", op, timeout, deadline)

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
        query: list[str] = []
        for name, value in attributes.items():
            if name not in _ATTRIBUTES:
                raise ValueError(f"unknown attribute {name!r}")
            query.append(
                name
                if value is None
                else f"{name}={value:g}"
                if isinstance(value, float)
                else f"{name}={value}"
            )

        async def op(dev: Device) -> None:
            response = await self._request(dev, Code.PUT, path, query=query)
            self._check(dev, response, f"write-attributes {path}")

        await self._submit(endpoint, f"write-attributes {path}", op, timeout, deadline)

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
        base = Path(object_id)

        async def op(dev: Device) -> Path:
            reg = dev.registration
            target = base if instance_id is None else Path(object_id, instance_id)
            recs = list(records)
            if instance_id is not None:
                recs = [
                    Record(
                        Path(object_id, instance_id, *r.path[2:]) if len(r.path) >= 3 else r.path,
                        r.value,
                        r.time,
                    )
                    for r in recs
                ]
            last: DeviceResponseError | None = None
            for cf in write_formats(reg.version_tuple, reg.objects.content_formats, target, False):
                try:
                    payload = encode(
                        cf, recs, base_path=target if instance_id is not None else None, registry=dev.lookup
                    )
                except Lwm2mFormatError:
                    continue
                response = await self._request(dev, Code.POST, base, content_format=cf, payload=payload)
                if int(response.code) in _FORMAT_RETRY:
                    last = DeviceResponseError(endpoint, int(response.code), f"Content-Format {cf}")
                    continue
                self._check(dev, response, f"create /{object_id}")
                location = [seg for seg in response.opt.location_path if seg]
                if len(location) >= 2 and location[-2] == str(object_id) and location[-1].isdigit():
                    return Path(object_id, int(location[-1]))
                if instance_id is not None:
                    return Path(object_id, instance_id)
                inst = {r.path[1] for r in recs if len(r.path) >= 2}
                return Path(object_id, inst.pop()) if len(inst) == 1 else base
            raise last or DevicePayloadError(endpoint, "create: records fit no format the device takes")

        return await self._submit(endpoint, f"create /{object_id}", op, timeout, deadline)

    async def delete(
        self, endpoint: str, path: Path, *, timeout: float | None = None, deadline: float | None = None
    ) -> None:
        async def op(dev: Device) -> None:
            response = await self._request(dev, Code.DELETE, path)
            self._check(dev, response, f"delete {path}")

        await self._submit(endpoint, f"delete {path}", op, timeout, deadline)

    async def read_composite(
        self,
        endpoint: str,
        paths: Sequence[Path],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> list[Record]:
        """Read-Composite (FETCH); falls back to one Read per path when the device has no composite."""
        wanted = tuple(paths)

        async def op(dev: Device) -> list[Record]:
            reg = dev.registration
            if dev.composite is not False:
                for cf in composite_formats(reg.version_tuple, reg.objects.content_formats):
                    body = encode(cf, [Record(p, None) for p in wanted])
                    try:
                        async with asyncio.timeout(self._settings.composite_timeout):
                            response = await self._request(
                                dev, Code.FETCH, Path(), accept=cf, content_format=cf, payload=body
                            )
                    except (TimeoutError, DeviceTimeoutError):
                        log.info("endpoint=%s: no answer to Read-Composite, falling back", endpoint)
                        dev.composite = False
                        break
                    code = int(response.code)
                    if code in _FORMAT_RETRY:
                        continue
                    if code in _NO_COMPOSITE:
                        dev.composite = False
                        break
                    self._check(dev, response, "read-composite")
                    dev.composite = True
                    got = response.opt.content_format
                    return self._decode(dev, cf if got is None else int(got), response.payload, Path())
            out: list[Record] = []
            for p in wanted:
                out.extend(await self._read(dev, p))
            return out

        return await self._submit(endpoint, "read-composite", op, timeout, deadline)

    # --- observations ------------------------------------------------------------------------------

    def _observe_options(self, path: Path, observe: int, accept: int | None) -> list[tuple[int, bytes]]:
        options = [(wire.OPT_OBSERVE, wire.uint(observe)), *wire.path_options(_path_segments(path))]
        if accept is not None:
            options.append((wire.OPT_ACCEPT, wire.uint(accept)))
        return options

    async def observe(
        self, endpoint: str, path: Path, *, timeout: float | None = None, deadline: float | None = None
    ) -> ObservationHandle:
        """Observe a path; notifications reach the sink as NOTIFY records. Replaces an observation of
        the same path."""
        return await self._submit(
            endpoint, f"observe {path}", lambda dev: self._observe(dev, (path,), False), timeout, deadline
        )

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
        wanted = tuple(paths)

        async def op(dev: Device) -> list[ObservationHandle]:
            if dev.composite is not False and composite_formats(
                dev.registration.version_tuple, dev.registration.objects.content_formats
            ):
                handle = await self._observe(dev, wanted, True)
                if handle is not None:
                    return [handle]
            handles: list[ObservationHandle] = []
            refused: DeviceResponseError | None = None
            for p in wanted:
                try:
                    handles.append(await self._observe(dev, (p,), False))
                except DeviceResponseError as exc:
                    log.info("endpoint=%s: observe %s refused: %s", endpoint, p, exc)
                    refused = exc
            if refused is not None and not handles:
                raise refused
            return handles

        return await self._submit(endpoint, "observe-composite", op, timeout, deadline)

    async def _observe(  # noqa: PLR0915
        self, dev: Device, paths: tuple[Path, ...], composite: bool
    ) -> ObservationHandle:
        reg = dev.registration
        old = dev.observations.pop(paths, None)
        if old is not None:
            old.cancelled = True
            self._tap.forget_token(old.token)
            self._on_change(reg.endpoint)
        if composite:
            candidates = composite_formats(reg.version_tuple, reg.objects.content_formats)
        else:
            candidates = self._formats(
                dev,
                f"read{len(paths[0])}",
                read_formats(reg.version_tuple, reg.objects.content_formats, paths[0]),
            )
        last: DeviceResponseError | None = None
        for cf in candidates:
            token = self._tap.new_token()
            obs = Observation(reg.endpoint, reg.reg_id, paths, token, cf, composite)
            self._tap.observe_token(token, obs)
            try:
                if composite:
                    options = self._observe_options(Path(), 0, cf)
                    options.append((wire.OPT_CONTENT_FORMAT, wire.uint(cf)))
                    body = encode(cf, [Record(p, None) for p in paths])
                    try:
                        async with asyncio.timeout(self._settings.composite_timeout):
                            response = await self._tap.request(
                                reg.peer, Code.FETCH, options, body, token=token
                            )
                    except TimeoutError:
                        log.info("endpoint=%s: no answer to Observe-Composite, falling back", reg.endpoint)
                        dev.composite = False
                        return None  # type: ignore[return-value]
                else:
                    response = await self._tap.request(
                        reg.peer, Code.GET, self._observe_options(paths[0], 0, cf), token=token
                    )
            except ExchangeFailed as exc:
                self._tap.forget_token(token)
                raise DeviceTimeoutError(reg.endpoint, f"observe: {exc}") from None
            except BaseException:
                self._tap.forget_token(token)
                raise
            code = response.code
            if code in _FORMAT_RETRY:
                self._tap.forget_token(token)
                last = DeviceResponseError(reg.endpoint, code, f"Accept {cf}")
                continue
            if composite and code in _NO_COMPOSITE:
                self._tap.forget_token(token)
                dev.composite = False
                return None  # type: ignore[return-value]
            if not (64 <= code < 96):
                self._tap.forget_token(token)
                raise DeviceResponseError(
                    reg.endpoint, code, response.payload[:120].decode("utf-8", "replace")
                )
            got = response.content_format if response.content_format is not None else cf
            obs.content_format = got
            records = self._decode(dev, got, response.payload, obs.base)
            if response.observe is None:
                self._tap.forget_token(token)
                log.info("endpoint=%s: %s answered without Observe: not observable", reg.endpoint, paths)
            else:
                obs.seq.accept(response.observe, self._clock())
                dev.observations[paths] = obs
                self._on_change(reg.endpoint)
                if composite:
                    dev.composite = True
                else:
                    dev.formats[f"read{len(paths[0])}"] = cf
            self.deliver(dev, records)
            log.info(
                "endpoint=%s device=%s: observing %s", reg.endpoint, reg.device_id, ",".join(map(str, paths))
            )
            return ObservationHandle(reg.endpoint, paths, token, got, tuple(records), composite)
        raise last or DeviceResponseError(reg.endpoint, Code.NOT_ACCEPTABLE, "no common content format")

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
        dev = self._device(endpoint)
        obs = dev.observations.pop(key, None)
        if obs is None:
            return False
        obs.cancelled = True
        self._on_change(endpoint)

        async def op(dev: Device) -> bool:
            reg = dev.registration
            try:
                if obs.composite:
                    options = self._observe_options(Path(), 1, obs.content_format)
                    options.append((wire.OPT_CONTENT_FORMAT, wire.uint(obs.content_format)))
                    body = encode(obs.content_format, [Record(p, None) for p in obs.paths])
                    await self._tap.request(reg.peer, Code.FETCH, options, body, token=obs.token)
                else:
                    options = self._observe_options(obs.paths[0], 1, obs.content_format)
                    await self._tap.request(reg.peer, Code.GET, options, token=obs.token)
            except ExchangeFailed:
                pass  # the device forgot it already (RST): cancelled either way
            finally:
                self._tap.forget_token(obs.token)
            return True

        try:
            return await self._submit(endpoint, f"cancel-observe {key}", op, timeout, deadline)
        except DeviceTimeoutError:
            self._tap.forget_token(obs.token)  # reactive cancellation (RST) covers it from here
            return True

    def settle(self, endpoint: str, reg_id: str, settled: bool = True) -> None:
        """The sink says whether its set-up of registration `reg_id` is complete: a restart restores a
        settled registration as it is, and sets up again one whose set-up was interrupted."""
        dev = self._devices.get(endpoint)
        if dev is not None and dev.registration.reg_id == reg_id and dev.settled != settled:
            dev.settled = settled
            self._on_change(endpoint)

    def observations(self, endpoint: str) -> list[tuple[Path, ...]]:
        dev = self._devices.get(endpoint)
        return [] if dev is None else list(dev.observations)

    def notification(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, obs: Observation) -> None:
        """A notification on one of our tokens (hot path)."""
        con = msg.mtype == wire.CON
        dev = self._devices.get(obs.endpoint)
        if obs.cancelled or dev is None or dev.registration.reg_id != obs.reg_id:
            self._tap.forget_token(obs.token)
            self._tap.send(wire.encode(wire.RST, 0, msg.mid, b""), peer)
            return
        if con:
            cached = self._dedup.check(peer, msg.mid, self._clock())
            if cached is not None:
                if cached:
                    self._tap.send(cached, peer, pktinfo)
                return
        now = self._clock()
        self.wake(dev, now)
        if not 64 <= msg.code < 96:
            log.info(
                "endpoint=%s: observation %s ended by the device (%s)",
                obs.endpoint,
                ",".join(map(str, obs.paths)),
                msg.code,
            )
            dev.observations.pop(obs.paths, None)
            self._tap.forget_token(obs.token)
            self._on_change(obs.endpoint)
            self._responder.notification_done(msg, peer, pktinfo, True)
            return
        if not obs.seq.accept(msg.observe, now):
            self._responder.notification_done(msg, peer, pktinfo, True)
            return
        cf = msg.content_format if msg.content_format is not None else obs.content_format
        try:
            records = decode(
                cf,
                msg.payload,
                base_path=obs.base,
                registry=dev.lookup,
                now=self._wallclock(),
                max_payload=self._settings.max_payload,
            )
        except Lwm2mFormatError as exc:
            log.warning("endpoint=%s: undecodable notification (%s)", obs.endpoint, exc.reason)
            self._responder.notification_done(msg, peer, pktinfo, True)
            return
        try:
            result = self._sink.on_records(
                dev.registration.identity, records, TelemetrySource.NOTIFY, confirmable=con
            )
        except BackPressure:
            self._responder.notification_done(msg, peer, pktinfo, False)  # no ACK: the device retransmits
            return
        except Exception:
            log.exception("endpoint=%s: sink failed on a notification", obs.endpoint)
            self._responder.notification_done(msg, peer, pktinfo, False)
            return
        if not con:
            if isinstance(result, Awaitable):
                self.adopt(result)
            return
        self._responder.await_sink(result, msg, peer, pktinfo, notification=True)
