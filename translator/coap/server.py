"""The LwM2M server face: one UDP listener on aiocoap with the registration interface, Send, plain CBOR
ingest, the hot path in front, and the device manager for downlinks.

    async with Lwm2mServer(CoapSettings(port=5683), sink) as server:
        records = await server.devices.read("dev1", Path(3303, 0, 5700))

Resources (device → server):

| request | answer |
|---|---|
| `POST /rd?ep=..&lt=..&lwm2m=..&b=..[&Q]` (link format) | 2.01 `Location-Path: rd/{id}` |
| `POST /rd/{id}[?lt=..&b=..]` (optional new object list) | 2.04 |
| `DELETE /rd/{id}` | 2.02 |
| `POST /dp` (SenML JSON/CBOR, LwM2M CBOR) | 2.04 once the sink has the data safe |
| `POST /ingest?ep=..` (plain CBOR map, see ingest.py) | 2.04 once the sink has the data safe |

Errors are typed (errors.py) and mapped once, by `answer_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiocoap
import aiocoap.interfaces
from aiocoap.numbers.codes import Code as AioCode

from translator.coap import aiocoap_dedup, wire
from translator.coap.blockwise import Block1Assembler, ShortResponses
from translator.coap.credentials import Credentials
from translator.coap.dedup import DedupCache
from translator.coap.dtls.peers import is_virtual
from translator.coap.errors import (
    BackPressure,
    BadRequest,
    Code,
    Forbidden,
    PayloadTooLarge,
    RequestRejected,
    UnknownRegistration,
    answer_for,
)
from translator.coap.hooks import ObjectsCheck, RefusalHook, RegisterGate, ignore_refusal, refusal_kind
from translator.coap.hotpath import UDP_MAX, DatagramTap
from translator.coap.identity import (
    Admission,
    ClaimedEndpointResolver,
    DeviceIdentity,
    IdentityResolver,
    SecurityContext,
)
from translator.coap.ingest import decode_ingest, decode_send
from translator.coap.management import DeviceManager
from translator.coap.memo import BoundedMemo
from translator.coap.queue import DownlinkQueue
from translator.coap.ratelog import LogBudget, RateLimitFilter
from translator.coap.registration import (
    Peer,
    RegisterParams,
    Registration,
    RegistrationStore,
    parse_objects,
    parse_query,
)
from translator.coap.responder import Responder
from translator.coap.settings import CoapSettings
from translator.coap.sink import (
    DeregisterReason,
    TelemetryRecord,
    TelemetrySink,
    TelemetrySource,
    acknowledged,
)
from translator.coap.snapshot import (
    NoJournal,
    ObservationSnapshot,
    RegistrationJournal,
    RegistrationSnapshot,
    expiry_wallclock,
)
from translator.coap.state import Device, Observation
from translator.lwm2m import ObjectRegistry, RegisteredObjects
from translator.ops.logs import device_log, log_for

if TYPE_CHECKING:
    from translator.coap.dtls.endpoint import DtlsEndpoint

log = logging.getLogger(__name__)

MAX_INGEST_IDENTITIES = 10_000
INGEST_IDENTITY_LIFETIME = 600.0
# Room for the header and options of a request whose payload is `max_payload`: a bigger datagram is cut by
# the kernel and refused with 4.13.
HEADER_ROOM = 2048
AIOCOAP_LOGGER = "translator.coap.aiocoap"


def _served(path: Sequence[str]) -> bool:
    """Whether a request path names a resource of this server (what `_render` routes)."""
    if not path:
        return False
    if path[0] == "rd":
        return len(path) <= 2
    return len(path) == 1 and path[0] in {"dp", "ingest"}


def _claimed(query: Sequence[str]) -> str | None:
    claimed: str | None = None
    for item in query:
        if item.startswith("ep="):
            claimed = item[3:]
    return claimed


def _host(peer: Peer) -> str:
    host = str(peer[0])
    return host[7:] if host.startswith("::ffff:") else host


class _Root(aiocoap.interfaces.Resource):  # type: ignore[misc]
    """The whole resource tree in one object: no `Site` (no deep copy, no per-request URI building)."""

    def __init__(self, server: Lwm2mServer) -> None:
        super().__init__()
        self._server = server
        settings = server.settings
        # aiocoap's Resource._render_to_pipe uses these two; its own keep unbounded state (blockwise.py)
        self._block1 = Block1Assembler(
            max_payload=settings.max_payload,
            max_transfers=settings.block_transfers,
            lifetime=settings.block_lifetime,
            clock=server._clock,
        )
        self._block2 = ShortResponses()

    async def needs_blockwise_assembly(self, request: Any) -> bool:
        return True  # registration payloads may come in blocks; aiocoap reassembles them

    async def render(self, request: Any) -> Any:
        return await self._server._render(request)

    async def render_to_pipe(self, pipe: Any) -> None:
        await self._render_to_pipe(pipe)


class Lwm2mServer:
    """Owns the aiocoap context, the datagram tap, the registration store and the housekeeping task."""

    def __init__(
        self,
        settings: CoapSettings,
        sink: TelemetrySink,
        *,
        registry: ObjectRegistry | None = None,
        resolver: IdentityResolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        objects_check: ObjectsCheck | None = None,
        on_refused: RefusalHook = ignore_refusal,
        journal: RegistrationJournal | None = None,
        credentials: Credentials | None = None,
        share_port: bool = False,
        register_gate: RegisterGate | None = None,
    ) -> None:
        self.settings = settings
        # `serve --workers`: the ports are shared with the other workers (SO_REUSEPORT kept on both sockets).
        self._share_port = share_port
        self._register_gate = register_gate
        # With credentials the DTLS port opens, and the plain port refuses the endpoints they secure.
        self._credentials = credentials
        self._dtls: DtlsEndpoint | None = None
        self._sink = sink
        self._objects_check = objects_check
        self._on_refused = on_refused
        self._journal: RegistrationJournal = journal or NoJournal()
        self._registry = registry or ObjectRegistry.builtin()
        self._resolver: IdentityResolver = resolver or ClaimedEndpointResolver()
        self._admission = Admission(auto=settings.auto_register, allow=settings.allow)
        self._clock = clock
        self._wallclock = wallclock
        self.store = RegistrationStore(
            grace=settings.grace, unbounded=settings.unbounded_lifetime, last_heard=self._last_heard
        )
        self._devices: dict[str, Device] = {}
        self._ingest_ids = BoundedMemo[str, DeviceIdentity](
            max_entries=MAX_INGEST_IDENTITIES, lifetime=INGEST_IDENTITY_LIFETIME
        )
        self._dedup = DedupCache(
            per_peer=settings.dedup_per_peer,
            max_peers=settings.dedup_max_peers,
            max_entries=settings.dedup_max_entries,
            lifetime=settings.dedup_lifetime,
        )
        self.tap = DatagramTap(
            self if settings.hot_path else _NoHotRequests(self),
            dedup=self._dedup,
            clock=clock,
            recv_size=min(UDP_MAX, settings.max_payload + HEADER_ROOM),
            entity_limit=settings.max_payload,
        )
        self._root: _Root | None = None
        self._log_filter = RateLimitFilter(LogBudget(clock=clock))
        self._refusal_log = LogBudget(clock=clock)  # one "refused" line per kind per 10 s
        self._responder = Responder(
            self.tap, self._dedup, sink_timeout=settings.sink_timeout, clock=clock, on_refused=on_refused
        )
        self.devices = DeviceManager(
            settings=settings,
            sink=sink,
            devices=self._devices,
            tap=self.tap,
            dedup=self._dedup,
            responder=self._responder,
            clock=clock,
            wallclock=wallclock,
            lifetime_written=self._lifetime_written,
            on_change=self._changed,
        )
        self.registrations_total = 0  # every successful Register since start, re-registrations included
        self._context: Any = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._address: tuple[str, int] | None = None

    # --- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._root = _Root(self)
        # aiocoap logs a line per unexpected message; a flood of them must not become a flood of lines
        logging.getLogger(AIOCOAP_LOGGER).addFilter(self._log_filter)
        # aiocoap sets SO_REUSEPORT before its bind unless AIOCOAP_REUSE_PORT=0, read at each bind: its only
        # switch. Off, a lone server cannot join a group of workers sharing the port (the kernel would hand
        # it a share of their devices); on, a worker can.
        os.environ["AIOCOAP_REUSE_PORT"] = "1" if self._share_port else "0"
        self._context = await aiocoap.Context.create_server_context(
            self._root, bind=self.settings.bind, transports=["udp6"], loggername=AIOCOAP_LOGGER
        )
        token_manager = self._context.request_interfaces[0]
        message_manager = token_manager.token_interface
        aiocoap_dedup.take_over(message_manager, self._dedup)
        interface = message_manager.message_interface
        # With hot_path off the tap still reads the socket and carries Observe exchanges.
        self.tap.attach(interface, receive_buffer=self.settings.receive_buffer)
        self.devices.bind(self._context, interface)
        sock = interface.transport.get_extra_info("socket")
        # Should the switch above be overridden, a socket bound with SO_REUSEPORT would let a second server
        # bind the port too and silently take a share of the devices. Cleared now, the next bind on the port
        # fails with EADDRINUSE instead — unless sharing the port is the point (workers: the kernel hashes
        # each source to one of them).
        if not self._share_port:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
        sockname = sock.getsockname()
        self._address = (_host(sockname), int(sockname[1]))
        if self._credentials is not None and self.settings.dtls:
            await self._start_dtls(self._credentials)
        self._housekeeping = asyncio.get_running_loop().create_task(
            self._housekeep(), name="coap-housekeeping"
        )
        log.info(
            "LwM2M server listening on %s port %d (hot path %s)",
            self.settings.host,
            self._address[1],
            "on" if self.settings.hot_path else "off",
        )

    async def _start_dtls(self, credentials: Credentials) -> None:
        from translator.coap.dtls.endpoint import DtlsEndpoint  # OpenSSL only when DTLS is on
        from translator.coap.dtls.sessions import DtlsLimits, ServerCertificates

        settings = self.settings
        dtls = DtlsEndpoint(
            host=settings.host,
            port=settings.dtls_port,
            credentials=credentials,
            deliver=self.tap.secure_received,
            limits=DtlsLimits(
                max_sessions=settings.dtls_max_sessions,
                max_handshakes=settings.dtls_max_handshakes,
                handshake_timeout=settings.dtls_handshake_timeout,
                idle_timeout=settings.dtls_idle_timeout,
            ),
            clock=self._clock,
            receive_buffer=settings.receive_buffer,
            reuse_port=self._share_port,
            certificates=(
                ServerCertificates(
                    settings.dtls_certificate, settings.dtls_private_key, settings.dtls_client_ca
                )
                if settings.dtls_certificate is not None
                and settings.dtls_private_key is not None
                and settings.dtls_client_ca is not None
                else None
            ),
        )
        await dtls.start()
        self._dtls = dtls
        self.tap.secure(dtls)

    @property
    def dtls(self) -> DtlsEndpoint | None:
        return self._dtls

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
            self._housekeeping = None
        for dev in list(self._devices.values()):
            self.devices.end_device(dev, "server shutting down")
            self._emit_deregistered(dev.registration, DeregisterReason.SHUTDOWN)
        self._devices.clear()
        await self._responder.close()
        await self.devices.close()
        if self._dtls is not None:
            await self._dtls.stop()
            self._dtls = None
        self.tap.close()
        if self._context is not None:
            context, self._context = self._context, None
            try:
                async with asyncio.timeout(5.0):
                    await context.shutdown()
            except TimeoutError:
                log.warning("aiocoap context shutdown timed out")
        logging.getLogger(AIOCOAP_LOGGER).removeFilter(self._log_filter)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the listener is bound to."""
        if self._address is None:
            raise RuntimeError("server not started")
        return self._address

    @property
    def port(self) -> int:
        return self.address[1]

    def registration(self, endpoint: str) -> Registration | None:
        return self.store.by_endpoint(endpoint)

    # --- surviving a restart -----------------------------------------------------------------------

    def _changed(self, endpoint: str) -> None:
        try:
            self._journal.changed(endpoint)
        except Exception:
            reg = self.store.by_endpoint(endpoint)
            log_for(log, None if reg is None else reg.device_id).exception(
                "endpoint=%s: registration journal failed", endpoint
            )

    def snapshot(self, endpoint: str) -> RegistrationSnapshot | None:
        """The registration of `endpoint` and its observations as they are now; None when not registered."""
        reg = self.store.by_endpoint(endpoint)
        dev = self._devices.get(endpoint)
        if reg is None or dev is None:
            return None
        observations = tuple(
            ObservationSnapshot(obs.token, obs.paths, obs.content_format, obs.composite)
            for obs in dev.observations.values()
            if not obs.cancelled
        )
        expires = expiry_wallclock(
            reg, now=self._clock(), wall_now=self._wallclock(), unbounded=self.settings.unbounded_lifetime
        )
        return RegistrationSnapshot(reg, observations, expires, dev.settled)

    def restore(self, snapshots: Sequence[RegistrationSnapshot]) -> list[RegistrationSnapshot]:
        """Take back registrations and observations kept by a previous run, before the socket opens: a
        notification on a restored token is telemetry, an Update of `rd/<id>` and a Send from the restored
        address are accepted, with nothing sent to the device. Returns the snapshots taken (an endpoint
        registered meanwhile keeps its new registration)."""
        taken: list[RegistrationSnapshot] = []
        for snapshot in snapshots:
            reg = self.store.restore(snapshot.registration)
            if reg is None:
                continue
            lookup = self._registry.for_versions(reg.objects.objects)  # shared per object list
            dev = Device(reg, lookup, DownlinkQueue[Any](self.settings.queue_window))
            dev.settled = snapshot.settled
            for kept in snapshot.observations:
                obs = Observation(
                    reg.endpoint, reg.reg_id, kept.paths, kept.token, kept.content_format, kept.composite
                )
                dev.observations[kept.paths] = obs
                self.tap.observe_token(kept.token, obs)
                if kept.composite:
                    dev.composite = True
            self._devices[reg.endpoint] = dev
            taken.append(snapshot)
            device_log(log, reg.device_id).info(
                "endpoint=%s: restored rd/%s (%d observations, %.0fs left)",
                reg.endpoint,
                reg.reg_id,
                len(dev.observations),
                reg.expires_at(0.0, self.settings.unbounded_lifetime) - self._clock(),
            )
        return taken

    def _moved(self, dev: Device, peer: Peer) -> None:
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
            _host(old.peer),
            _host(peer),
        )
        self._changed(reg.endpoint)
        self._emit("on_updated", reg)

    def stats(self) -> dict[str, int]:
        return {
            **self.tap.counters,
            "registrations": len(self.store),
            "dedup_entries": len(self._dedup),
            "dedup_peers": self._dedup.peers,
            "block_transfers": len(self._root._block1) if self._root is not None else 0,
            "ingest_identities": len(self._ingest_ids),
            "sink_inflight": self._responder.inflight,
            **(
                {"dtls_sessions": len(self._dtls.table), "dtls_handshaking": self._dtls.table.handshaking}
                | {f"dtls_{name}": count for name, count in self._dtls.table.counters.items()}
                if self._dtls is not None
                else {}
            ),
        }

    # --- lifetime ----------------------------------------------------------------------------------

    def _last_heard(self, reg: Registration) -> float | None:
        dev = self._devices.get(reg.endpoint)
        if dev is None or dev.queue.awake_until == float("-inf"):
            return None
        return dev.queue.awake_until - dev.queue.window

    def _lifetime_written(self, endpoint: str, lifetime: int) -> None:
        """The device took a new lifetime (/1/x/1) from us: its registration lives by it from now on."""
        dev = self._devices.get(endpoint)
        if dev is None:
            return
        reg = self.store.set_lifetime(dev.registration.reg_id, lifetime)
        if reg is None or reg is dev.registration:
            return
        dev.registration = reg
        self._changed(endpoint)
        device_log(log, reg.device_id).info(
            "endpoint=%s: lifetime %d s written to the device", endpoint, lifetime
        )
        asyncio.get_running_loop().call_soon(self._emit, "on_updated", reg)

    # --- housekeeping ------------------------------------------------------------------------------

    async def _housekeep(self) -> None:
        last_sweep = self._clock()
        while True:
            await asyncio.sleep(self.settings.tick)
            now = self._clock()
            try:
                for reg in self.store.expire(now):
                    dev = self._devices.pop(reg.endpoint, None)
                    if dev is not None:
                        self.devices.end_device(dev, "registration expired")
                    device_log(log, reg.device_id).info(
                        "endpoint=%s: registration rd/%s expired", reg.endpoint, reg.reg_id
                    )
                    self._changed(reg.endpoint)
                    self._emit_deregistered(reg, DeregisterReason.EXPIRED)
                self.devices.expire_held(now)
                self._responder.sweep(now)
                if now - last_sweep > 10.0:
                    last_sweep = now
                    self._dedup.sweep(now)
                    self._ingest_ids.sweep(now)
                if self._root is not None:
                    self._root._block1.expire(now)  # looks at the oldest only: cheap every tick
            except Exception:
                log.exception("housekeeping failed")

    # --- sink events -------------------------------------------------------------------------------

    def _emit(self, name: str, *args: Any) -> None:
        try:
            getattr(self._sink, name)(*args)
        except Exception:
            log.exception("sink %s failed", name)

    def _emit_deregistered(self, reg: Registration, reason: DeregisterReason) -> None:
        self._emit("on_deregistered", reg, reason)

    # --- registration interface (aiocoap) ----------------------------------------------------------

    def _security_of(self, request: Any) -> SecurityContext | None:
        return self._security_for(request.remote.sockaddr)

    def _security_for(self, peer: Peer) -> SecurityContext | None:
        """The peer's security context: the endpoint bound to its DTLS identity; plain UDP has none."""
        if not is_virtual(peer):
            return None
        endpoint = self._dtls.endpoint_of(peer) if self._dtls is not None else None
        if endpoint is None:
            raise Forbidden("the DTLS session ended")
        return SecurityContext("dtls-psk", endpoint)

    async def _refuse_secured(self, claimed: str | None) -> None:
        """An endpoint with credentials is only ever itself over its secured session: on the plain port it is
        refused 4.03: the LwM2M Transport spec (Registration Interface) lists 4.03 Forbidden for a Register
        the server does not allow, while RFC 7252's 4.01 asks the client to improve its authentication on
        the same request, which the plain port can never accept."""
        if claimed is not None and self._credentials is not None and await self._credentials.secured(claimed):
            raise Forbidden(f"endpoint {claimed!r} has credentials: register over DTLS")

    def _check_owner(self, reg: Registration | None, peer: Peer) -> None:
        """A registration made over DTLS is touched only through its identity, and one made over plain UDP
        never through a DTLS identity (each must register as itself)."""
        if reg is not None and reg.peer != peer and (is_virtual(reg.peer) or is_virtual(peer)):
            raise Forbidden(f"rd/{reg.reg_id} belongs to another security context")

    def _check_size(self, payload: bytes) -> None:
        if len(payload) > self.settings.max_payload:
            raise PayloadTooLarge(f"payload of {len(payload)} bytes exceeds {self.settings.max_payload}")

    def _check_room(self, identity: DeviceIdentity) -> None:
        # A bound on what a flood of new endpoint names can hold (~3 KB each on this side); devices
        # already registered re-register as before.
        if (
            len(self.store) >= self.settings.max_registrations
            and self.store.by_endpoint(identity.endpoint) is None
        ):
            raise BackPressure("registration table full", retry_after=60)

    async def _render(self, request: Any) -> Any:
        path = tuple(request.opt.uri_path)
        method = int(request.code)
        try:
            if path and path[0] == "rd":
                if len(path) == 1:
                    if method != Code.POST:
                        raise RequestRejected("use POST to register", Code.METHOD_NOT_ALLOWED)
                    if not is_virtual(request.remote.sockaddr):
                        await self._refuse_secured(parse_query(tuple(request.opt.uri_query)).endpoint)
                    checked = self._register_checked(request)
                    if self._register_gate is not None:  # e.g. the claim of a device on a shared store
                        await self._register_gate(checked[0])
                    return self._register(request, checked)
                if len(path) == 2:
                    if method == Code.POST:
                        return self._update(request, path[1])
                    if method == Code.DELETE:
                        self._check_owner(self.store.get(path[1]), request.remote.sockaddr)
                        return self._deregister(path[1])
                    raise RequestRejected("use POST or DELETE", Code.METHOD_NOT_ALLOWED)
            elif path in (("dp",), ("ingest",)):
                if method != Code.POST:
                    raise RequestRejected("use POST", Code.METHOD_NOT_ALLOWED)
                return await self._slow_telemetry(request, path[0])
            raise RequestRejected(f"no resource /{'/'.join(path)}", Code.NOT_FOUND)
        except Exception as exc:
            code, reason, max_age = answer_for(exc)
            self._on_refused(code, refusal_kind(exc))
            if code == Code.INTERNAL_SERVER_ERROR:
                log.exception("request %s /%s failed", AioCode(method), "/".join(path))
            elif self._refusal_log.allow((method, path[:1], code)) is not None:
                log.info(
                    "refused %s /%s from %s: %s %s",
                    AioCode(method),
                    "/".join(path),
                    _host(request.remote.sockaddr),
                    Code(code).dotted,
                    reason,
                )
            response = aiocoap.Message(code=AioCode(code), payload=reason.encode("utf-8", "replace")[:200])
            if max_age is not None:
                response.opt.max_age = max_age
            return response

    def _register_checked(
        self, request: Any
    ) -> tuple[DeviceIdentity, RegisterParams, RegisteredObjects | None]:
        """A Register's identity, parameters and objects, once every check of the request passed."""
        params = parse_query(tuple(request.opt.uri_query))
        identity = self._resolver.resolve(params.endpoint, self._security_of(request))
        self._admission.check(identity)
        payload = bytes(request.payload)
        self._check_size(payload)
        self._check_room(identity)
        objects = parse_objects(request.opt.content_format, payload)
        self._admit_objects(identity.endpoint, objects)
        return identity, params, objects

    def _register(
        self, request: Any, checked: tuple[DeviceIdentity, RegisterParams, RegisteredObjects | None]
    ) -> Any:
        peer: Peer = request.remote.sockaddr
        identity, params, objects = checked
        now = self._clock()
        outcome = self.store.register(identity, params, objects, peer, now)
        self.registrations_total += 1
        reg = outcome.registration
        old = self._devices.pop(reg.endpoint, None)
        queue = old.queue if old is not None else DownlinkQueue[Any](self.settings.queue_window)
        if old is not None:
            self.devices.end_device(old, "re-registered", keep_queue=True)
        dev = Device(reg, self._registry.for_versions(reg.objects.objects), queue)
        self._devices[reg.endpoint] = dev
        self._changed(reg.endpoint)
        device_log(log, reg.device_id).info(
            "endpoint=%s: registered rd/%s lwm2m=%s lt=%d b=%s queue=%s from %s%s",
            reg.endpoint,
            reg.reg_id,
            reg.version,
            reg.lifetime,
            reg.binding,
            reg.queue_mode,
            _host(peer),
            f" (replaces rd/{outcome.replaced.reg_id})" if outcome.replaced else "",
        )
        loop = asyncio.get_running_loop()
        loop.call_soon(self._emit, "on_registered", reg)  # after the 2.01 went out
        loop.call_soon(self.devices.wake, dev, now)
        return aiocoap.Message(code=AioCode.CREATED, location_path=reg.location)

    def _admit_objects(self, endpoint: str, objects: RegisteredObjects | None) -> None:
        """Refuse now (4.00) objects the owner cannot serve, rather than answer every later Send 5.00."""
        if objects is None or self._objects_check is None:
            return
        reason = self._objects_check(objects)
        if reason is not None:
            raise BadRequest(f"endpoint {endpoint}: {reason}")

    def _update(self, request: Any, reg_id: str) -> Any:
        peer: Peer = request.remote.sockaddr
        params = parse_query(tuple(request.opt.uri_query), update=True)
        payload = bytes(request.payload)
        self._check_size(payload)
        objects = parse_objects(request.opt.content_format, payload)
        known = self.store.get(reg_id)
        self._check_owner(known, peer)
        if objects is not None:
            self._admit_objects(known.endpoint if known is not None else f"rd/{reg_id}", objects)
        now = self._clock()
        reg = self.store.update(reg_id, params, objects, peer, now)
        dev = self._devices.get(reg.endpoint)
        if dev is None:  # cannot happen while store and devices agree; be safe
            raise UnknownRegistration(f"no registration rd/{reg_id}")
        dev.registration = reg
        if objects is not None:
            dev.lookup = self._registry.for_versions(reg.objects.objects)
        self._changed(reg.endpoint)
        device_log(log, reg.device_id).info(
            "endpoint=%s: updated rd/%s lt=%d b=%s from %s",
            reg.endpoint,
            reg_id,
            reg.lifetime,
            reg.binding,
            _host(peer),
        )
        loop = asyncio.get_running_loop()
        loop.call_soon(self._emit, "on_updated", reg)
        loop.call_soon(self.devices.wake, dev, now)
        return aiocoap.Message(code=AioCode.CHANGED)

    def _deregister(self, reg_id: str) -> Any:
        reg = self.store.deregister(reg_id)
        dev = self._devices.pop(reg.endpoint, None)
        if dev is not None:
            self.devices.end_device(dev, "de-registered")
        self._changed(reg.endpoint)
        device_log(log, reg.device_id).info("endpoint=%s: de-registered rd/%s", reg.endpoint, reg_id)
        asyncio.get_running_loop().call_soon(self._emit_deregistered, reg, DeregisterReason.DEREGISTERED)
        return aiocoap.Message(code=AioCode.DELETED)

    # --- telemetry ---------------------------------------------------------------------------------

    def _ingest_identity(self, query: Sequence[str], peer: Peer) -> DeviceIdentity:
        claimed = _claimed(query)
        if is_virtual(peer):
            identity = self._resolver.resolve(claimed, self._security_for(peer))
            self._admission.check(identity)
            return identity
        now = self._clock()
        if claimed is not None:
            known = self._ingest_ids.get(claimed, now)
            if known is not None:
                return known
        identity = self._resolver.resolve(claimed, None)
        self._admission.check(identity)
        self._ingest_ids.put(identity.endpoint, identity, now)
        return identity

    def _telemetry(
        self, kind: str, peer: Peer, query: Sequence[str], content_format: int | None, payload: bytes
    ) -> tuple[DeviceIdentity, list[TelemetryRecord], TelemetrySource]:
        """Decode a Send or ingest request (shared by the hot and the aiocoap path)."""
        if kind == "dp":
            reg = self.store.by_peer(peer)
            if reg is None:
                raise UnknownRegistration("Send from an address with no registration")
            dev = self._devices.get(reg.endpoint)
            if dev is None:  # store and device table disagree: treat as unregistered (device re-registers)
                device_log(log, reg.device_id).warning(
                    "endpoint=%s: registration without device state", reg.endpoint
                )
                raise UnknownRegistration("Send from an address with no registration")
            records = decode_send(
                content_format,
                payload,
                registry=dev.lookup,
                now=self._wallclock(),
                max_payload=self.settings.max_payload,
            )
            # Every device, not only queue mode: a lifetime-0 registration lives as long as it is heard.
            self.devices.wake(dev, self._clock())
            return reg.identity, list(records), TelemetrySource.SEND
        identity = self._ingest_identity(query, peer)
        return (
            identity,
            decode_ingest(
                content_format, payload, now=self._wallclock(), max_payload=self.settings.max_payload
            ),
            TelemetrySource.INGEST,
        )

    async def _slow_telemetry(self, request: Any, kind: str) -> Any:
        if kind == "ingest" and not is_virtual(request.remote.sockaddr):
            claimed = _claimed(tuple(request.opt.uri_query))
            if claimed is not None and self._ingest_ids.get(claimed, self._clock()) is None:
                await self._refuse_secured(claimed)  # then remembered: the hot path serves it next time
        confirmable = request.mtype == aiocoap.CON
        cf = request.opt.content_format
        device, records, source = self._telemetry(
            kind,
            request.remote.sockaddr,
            tuple(request.opt.uri_query),
            None if cf is None else int(cf),
            bytes(request.payload),
        )
        result = self._sink.on_records(device, records, source, confirmable=confirmable)
        if confirmable:
            answer: object = result
            if isinstance(result, Awaitable):
                async with asyncio.timeout(self.settings.sink_timeout):
                    answer = await result
            acknowledged(answer)  # anything but an Outcome raises: 5.00, never 2.04
        elif isinstance(result, Awaitable):
            self.devices.adopt(result)
        return aiocoap.Message(code=AioCode.CHANGED)

    # --- the hot path (DatagramTap handler) ---------------------------------------------------------

    def hot_request(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None) -> bool:
        path = msg.uri_path
        if not _served(path):
            # Answered here, not by aiocoap (~0.25 ms each): a flood of these must not starve the devices.
            refusal = RequestRejected(f"no resource /{'/'.join(path)}", Code.NOT_FOUND)
            self._responder.answer_error(msg, peer, pktinfo, refusal)
            return True
        if msg.code != Code.POST or len(path) != 1 or path[0] == "rd":
            return False
        kind = path[0]
        if (
            kind == "ingest"
            and self._credentials is not None
            and not is_virtual(peer)
            and self._ingest_ids.get(_claimed(msg.uri_query) or "", self._clock()) is None
        ):
            return False  # a name not seen lately: the slow path awaits whether it is secured
        cached = self._dedup.check(peer, msg.mid, self._clock())
        if cached is not None:
            if cached:
                self.tap.send(cached, peer, pktinfo)
            return True
        confirmable = msg.mtype == wire.CON
        responder = self._responder
        try:
            device, records, source = self._telemetry(
                kind, peer, msg.uri_query, msg.content_format, msg.payload
            )
            result = self._sink.on_records(device, records, source, confirmable=confirmable)
        except Exception as exc:
            responder.answer_error(msg, peer, pktinfo, exc)
            return True
        if confirmable:
            responder.await_sink(result, msg, peer, pktinfo)
        else:  # best effort: answered at once, delivered in the background
            if isinstance(result, Awaitable):
                self.devices.adopt(result)
            responder.answer(msg, peer, pktinfo, Code.CHANGED)
        return True

    def notification(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, observer: Any) -> None:
        dev = self._devices.get(observer.endpoint)
        if (
            dev is not None
            and dev.registration.peer != peer
            and (is_virtual(dev.registration.peer) or is_virtual(peer))
        ):
            return  # a secured device's token from elsewhere (or a plain one's from a DTLS identity)
        if (
            dev is not None
            and dev.registration.peer != peer
            and dev.registration.reg_id == observer.reg_id
            and not observer.cancelled
        ):
            # The token is ours and live: only the device (or whoever saw the token on the wire; plain UDP
            # has nothing better) sends it. docs/coap.md: the latest source address is where downlinks go.
            self._moved(dev, peer)
        self.devices.notification(msg, peer, pktinfo, observer)


class _NoHotRequests:
    """Tap handler for `hot_path=False`: requests go to aiocoap, notifications still work."""

    def __init__(self, server: Lwm2mServer) -> None:
        self._server = server

    def hot_request(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None) -> bool:
        return False

    def notification(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, observer: Any) -> None:
        self._server.notification(msg, peer, pktinfo, observer)
