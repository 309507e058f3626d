"""A simulated LwM2M client on aiocoap, for tests and `iotc-translator simulate`.

One `SimulatedDevice` is one endpoint with its own UDP socket: it registers, updates, de-registers,
sends (`/dp`), answers Read / Discover / Write / Write-Attributes / Execute / Create / Delete /
Observe (notifications when a value changes) and, optionally, Read-/Observe-Composite. Queue mode is
simulated the way Anjay behaves: `sleep()` closes the socket, `wake()` re-opens it on the same port
and sends an Update (or a full Register, as the LwM2M 1.2 client does; its observations are gone then).

With `SimulatorOptions(attributes=True)` notifications follow the attributes written with Write-Attributes
(or set by the device itself in `attributes`) the way the LwM2M 1.2 client does: a change notifies only
when the resource's gt/lt/st condition fires (any change when none is set), not before pmin has passed
since the observation's last notification, and every pmax at the latest. An Observe-Composite notifies
*every* member whenever *any* member fires, judged by that member's own attributes.

Values live in a flat map of resource paths; the encoding is the project's LwM2M core (the simulator is
a test peer for the CoAP layer; the content formats are checked against real clients' captures
elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

import aiocoap
import aiocoap.interfaces
from aiocoap.numbers.codes import Code as AioCode

from translator.coap import wire
from translator.coap.simnat import NatRelay
from translator.lwm2m import (
    ContentFormat,
    Link,
    Lwm2mFormatError,
    ObjectRegistry,
    Operations,
    Path,
    Record,
    Value,
    decode,
    encode,
    format_links,
)

if TYPE_CHECKING:
    from translator.coap.dtls.client import DtlsRelay

log = logging.getLogger(__name__)

DEFAULT_FORMATS = frozenset(
    {
        ContentFormat.TEXT,
        ContentFormat.OPAQUE,
        ContentFormat.CBOR,
        ContentFormat.TLV,
        ContentFormat.SENML_JSON,
        ContentFormat.SENML_CBOR,
        ContentFormat.LWM2M_JSON,
        ContentFormat.LWM2M_CBOR,
    }
)


def default_values() -> dict[Path, Value]:
    """Device (3) and Temperature (3303) instances, plus Location (6)."""
    return {
        Path(3, 0, 0): "iotc-translator",
        Path(3, 0, 1): "simulated",
        Path(3, 0, 2): "SIM-0001",
        Path(3, 0, 3): "1.0",
        Path(3, 0, 6, 0): 1,
        Path(3, 0, 6, 1): 5,
        Path(3, 0, 9): 100,
        Path(3, 0, 11, 0): 0,
        Path(3, 0, 14): "+00:00",
        Path(3, 0, 15): "UTC",
        Path(3, 0, 16): "U",
        Path(3303, 0, 5700): 21.5,
        Path(3303, 0, 5701): "Cel",
        Path(3303, 0, 5601): 20.0,
        Path(3303, 0, 5602): 25.0,
        Path(6, 0, 0): 48.85,
        Path(6, 0, 1): 2.35,
    }


@dataclass
class SimulatorOptions:
    version: str = "1.1"
    lifetime: int = 300
    queue_mode: bool = False
    binding_style: str = "query"  # "query": bare Q (1.1+); "b": b=UQ (1.0 style)
    ct_hint: int | None = None  # announce `</>;rt="oma.lwm2m";ct=..`
    formats: frozenset[int] = DEFAULT_FORMATS
    composite: str = "ok"  # "ok", "unsupported" (4.05), "silent" (empty ACK, never answers: Wakaama)
    con_notifications: bool = False  # real clients send NON notifications
    attributes: bool = False  # honour pmin/pmax/gt/lt/st like the 1.2 client (off: notify every change)
    default_format: int = ContentFormat.SENML_JSON
    extra: dict[str, str] = field(default_factory=dict)
    # Writes under these paths are refused with the given CoAP code (0x80 = 4.00, 0xA0 = 5.00, …) and change
    # nothing: a device enforcing its own range, or failing to store the value.
    refuse_writes: dict[Path, int] = field(default_factory=dict)
    # Executes of these resources are refused with the given CoAP code and run nothing: a device that will not
    # reboot now (5.03), or wants an authorisation it was not given (4.01).
    refuse_executes: dict[Path, int] = field(default_factory=dict)
    # Write-Attributes on a resource the device lacks answers 4.04, as the real C clients do.
    strict_attributes: bool = False
    # Real clients' reactions (docs/CLIENTS.md): a 1.1 client goes to "bootstrap required" after a 4.04 to
    # its Update and never comes back; a 1.2 client drops an observation whose notification got RST.
    stop_after_update_not_found: bool = False
    cancel_observation_on_rst: bool = False
    nat: bool = False  # behind a NAT relay (simnat.py): `rebind()` changes the source port the server sees
    # DTLS with this PSK (identity, key) through a relay (dtls/client.py); `server` is then the DTLS port and
    # `rebind()` makes a new handshake from a new port.
    psk: tuple[str, bytes] | None = None
    # DTLS with a certificate instead: (certificate chain, private key, CA of the server's certificate).
    certificate: tuple[FsPath, FsPath, FsPath] | None = None


class _DeviceResource(aiocoap.interfaces.ObservableResource):  # type: ignore[misc]
    def __init__(self, device: SimulatedDevice) -> None:
        super().__init__()
        self._device = device

    async def needs_blockwise_assembly(self, request: Any) -> bool:
        return True

    async def add_observation(self, request: Any, serverobservation: Any) -> None:
        self._device._add_observation(request, serverobservation)

    async def render(self, request: Any) -> Any:
        return await self._device._render(request)

    async def render_to_pipe(self, pipe: Any) -> None:
        await self._render_to_pipe(pipe)


class SimulatedDevice:
    def __init__(
        self,
        endpoint: str,
        server: tuple[str, int],
        *,
        options: SimulatorOptions | None = None,
        values: Mapping[Path, Value] | None = None,
        registry: ObjectRegistry | None = None,
        bind: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        self.endpoint = endpoint
        self.server = server
        self.options = options or SimulatorOptions()
        self.values: dict[Path, Value] = dict(default_values() if values is None else values)
        self.registry = registry or ObjectRegistry.builtin()
        self.attributes: dict[Path, dict[str, str]] = {}
        self.executed: list[tuple[Path, str]] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request served
        self.location: tuple[str, ...] | None = None
        self._bind = bind
        self._context: Any = None
        self._observers: dict[tuple[Path, ...], set[Any]] = {}
        self._watches: dict[Any, _Watch] = {}  # per observation, with `attributes`
        self.notifications = 0  # notifications sent after the first answers
        self._observation_tokens: dict[bytes, tuple[tuple[Path, ...], Any]] = {}
        self._notification_mids: dict[int, bytes] = {}  # message id of a NON notification sent → its token
        self.cancelled_by_rst: list[tuple[Path, ...]] = []
        self.requests_received = 0  # request datagrams from the server (retransmissions included)
        self.stopped = False  # a 1.1-style client after a 4.04 to its Update: gone for good
        self.nat: NatRelay | DtlsRelay | None = None  # the relay the device talks through
        self.port = 0

    # --- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        # aiocoap binds with SO_REUSEPORT unless AIOCOAP_REUSE_PORT=0 (read at every bind). On Linux a port-0
        # bind with SO_REUSEPORT may be given a port another such socket of the same user holds; two devices
        # then share it and the kernel delivers each datagram to only one of them (a lost Register).
        os.environ["AIOCOAP_REUSE_PORT"] = "0"
        self._context = await aiocoap.Context.create_server_context(
            _DeviceResource(self),
            bind=(self._bind[0], self.port or self._bind[1]),
            transports=["udp6"],
            loggername=f"translator.coap.simulator.{self.endpoint}",
        )
        interface = self._context.request_interfaces[0].token_interface.message_interface
        self.port = int(interface.transport.get_extra_info("socket").getsockname()[1])
        self._watch(interface)
        secured = self.options.psk is not None or self.options.certificate is not None
        if secured and self.nat is None:
            from translator.coap.dtls.client import DtlsRelay  # OpenSSL only for a DTLS device
            from translator.coap.dtls.openssl import ClientContext

            if self.options.certificate is not None:
                cert, key_file, ca = self.options.certificate
                context = ClientContext(certificate=cert, private_key=key_file, ca=ca)
            else:
                assert self.options.psk is not None
                identity, key = self.options.psk
                context = ClientContext(identity.encode("utf-8"), key)
            self.nat = DtlsRelay(self.server, context, self._bind[0])
            await self.nat.start()
        elif self.options.nat and self.nat is None:
            self.nat = NatRelay(self.server, self._bind[0])
            await self.nat.start()

    async def rebind(self) -> int:
        """NAT rebinding: the server sees a new source port from now on (requires `options.nat`)."""
        if self.nat is None:
            raise RuntimeError("rebind needs SimulatorOptions(nat=True) or a psk")
        return await self.nat.rebind()

    def _watch(self, interface: Any) -> None:
        """Count the requests that reach the device (`requests` also lists re-renders for notifications),
        and, for `cancel_observation_on_rst`, match RSTs to NON notifications: aiocoap tracks RSTs for CON
        messages only."""
        send, received = interface.send, interface.datagram_msg_received

        def sending(message: Any) -> None:
            if message.mtype == aiocoap.NON and message.opt.observe is not None and message.mid is not None:
                if len(self._notification_mids) > 1024:
                    self._notification_mids.clear()
                self._notification_mids[message.mid] = bytes(message.token)
            send(message)

        def receiving(data: bytes, ancdata: Any, flags: Any, address: Any) -> None:
            if len(data) >= 4 and (data[0] >> 4) & 0x3 < 2 and 1 <= data[1] < 32:  # a CON/NON request
                self.requests_received += 1
            if len(data) >= 4 and (data[0] >> 4) & 0x3 == 3 and self.options.cancel_observation_on_rst:
                token = self._notification_mids.pop(int.from_bytes(data[2:4], "big"), None)
                if token is not None:
                    self._cancel_by_rst(token)
            received(data, ancdata, flags, address)

        interface.send = sending
        interface.datagram_msg_received = receiving

    def _cancel_by_rst(self, token: bytes) -> None:
        entry = self._observation_tokens.pop(token, None)
        if entry is None:
            return
        paths, serverobservation = entry
        self._observers.get(paths, set()).discard(serverobservation)
        watch = self._watches.pop(serverobservation, None)
        if watch is not None:
            watch.stop()
        self.cancelled_by_rst.append(paths)
        log.info("%s: observation of %s cancelled (RST)", self.endpoint, paths)

    async def close(self) -> None:
        if self.nat is not None:
            self.nat.close()
            self.nat = None
        if self._context is not None:
            context, self._context = self._context, None
            self._observers.clear()
            for watch in self._watches.values():
                watch.stop()
            self._watches.clear()
            self._observation_tokens.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3.0):
                    await context.shutdown()

    async def __aenter__(self) -> SimulatedDevice:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- client → server ---------------------------------------------------------------------------

    def _uri(self, path: str) -> str:
        host, port = self.server if self.nat is None else self.nat.address
        host = f"[{host}]" if ":" in host else host
        return f"coap://{host}:{port}/{path}"

    async def _send(self, msg: Any, timeout: float = 10.0) -> Any:
        if self._context is None:
            raise RuntimeError("simulator not started")
        async with asyncio.timeout(timeout):
            return await self._context.request(msg).response

    def object_links(self) -> str:
        links: list[Link] = []
        if self.options.ct_hint is not None:
            links.append(Link("/", (("rt", "oma.lwm2m"), ("ct", str(self.options.ct_hint)))))
        instances = sorted({Path.of(p[:2]) for p in self.values})
        for oid in sorted({p[0] for p in instances}):
            model = self.registry.get(oid)
            if model is not None and model.version not in ("1.0", ""):
                links.append(Link(f"/{oid}", (("ver", model.version),)))
        links.extend(Link(str(p)) for p in instances)
        return format_links(links)

    def register_query(self) -> list[str]:
        o = self.options
        query = [f"ep={self.endpoint}", f"lt={o.lifetime}", f"lwm2m={o.version}"]
        if o.queue_mode and o.binding_style == "b":
            query.append("b=UQ")
        elif o.queue_mode:
            query.append("Q")
        query.extend(f"{k}={v}" for k, v in o.extra.items())
        return query

    async def register(self) -> Any:
        if self.stopped:
            raise RuntimeError(f"{self.endpoint} stopped for good after a 4.04 to its Update")
        msg = aiocoap.Message(
            code=AioCode.POST,
            uri=self._uri("rd"),
            content_format=ContentFormat.LINK_FORMAT,
            payload=self.object_links().encode(),
        )
        msg.opt.uri_query = tuple(self.register_query())
        response = await self._send(msg)
        if response.code == AioCode.CREATED:
            self.location = tuple(response.opt.location_path)
        return response

    async def update(self, *, lifetime: int | None = None, with_objects: bool = False) -> Any:
        if self.location is None:
            raise RuntimeError("not registered")
        msg = aiocoap.Message(code=AioCode.POST, uri=self._uri("/".join(self.location)))
        if lifetime is not None:
            msg.opt.uri_query = (f"lt={lifetime}",)
        if with_objects:
            msg.opt.content_format = ContentFormat.LINK_FORMAT
            msg.payload = self.object_links().encode()
        response = await self._send(msg)
        if response.code == AioCode.NOT_FOUND and self.options.stop_after_update_not_found:
            log.info("%s: Update refused with 4.04: stopping for good", self.endpoint)
            self.stopped = True
            self.location = None
            await self.close()
        return response

    async def deregister(self) -> Any:
        if self.location is None:
            raise RuntimeError("not registered")
        response = await self._send(
            aiocoap.Message(code=AioCode.DELETE, uri=self._uri("/".join(self.location)))
        )
        self.location = None
        return response

    async def send(
        self,
        paths: Iterable[Path],
        *,
        content_format: int = ContentFormat.SENML_JSON,
        confirmable: bool = True,
    ) -> Any:
        """LwM2M Send of the current values under `paths`, with the current time."""
        now = time.time()
        records = [
            Record(p, v, now) for want in paths for p, v in sorted(self.values.items()) if p.startswith(want)
        ]
        payload = encode(content_format, records, base_path=Path(), registry=self.registry)
        msg = aiocoap.Message(
            code=AioCode.POST,
            uri=self._uri("dp"),
            content_format=content_format,
            payload=payload,
            transport_tuning=aiocoap.Reliable if confirmable else aiocoap.Unreliable,
        )
        return await self._send(msg)

    async def stay_registered(self) -> None:
        """Update before the lifetime ends, the way the LwM2M 1.1 client does: the lifetime is whatever the
        Server object holds (/1/0/1, which the server may write) and an Update never carries `lt=`."""
        while True:
            lifetime = self.values.get(Path(1, 0, 1), self.options.lifetime)
            await asyncio.sleep(max(0.5, float(lifetime if isinstance(lifetime, int | float) else 60) / 2))
            with contextlib.suppress(TimeoutError, aiocoap.error.Error):
                await self.update()

    async def sleep(self) -> None:
        """Queue mode: stop listening (the socket closes, like Anjay after MAX_TRANSMIT_WAIT)."""
        await self.close()

    async def wake(self, *, register: bool = False) -> Any:
        """Re-open the socket on the same port and tell the server (Update, or a full Register)."""
        await self.start()
        return await (self.register() if register else self.update())

    def set_value(self, path: Path, value: Value) -> None:
        """Change a value; observers of it (or of an ancestor) are notified (when its attributes say so)."""
        self.values[path] = value
        for paths, observers in list(self._observers.items()):
            if any(path.startswith(p) for p in paths):
                for obs in list(observers):
                    watch = self._watches.get(obs)
                    if watch is None:
                        self.notifications += 1
                        obs.trigger()
                    else:
                        self._consider(watch, path, value)

    def effective_attributes(self, path: Path) -> dict[str, float]:
        """The attributes in force for `path`: those of the object, overridden by the instance's, then the
        resource's (LwM2M attribute inheritance)."""
        merged: dict[str, float] = {}
        for level in range(1, len(path) + 1):
            for name, text in self.attributes.get(Path.of(path[:level]), {}).items():
                with contextlib.suppress(ValueError):
                    merged[name] = float(text)
        return merged

    def _consider(self, watch: _Watch, path: Path, value: Value) -> None:
        attributes = self.effective_attributes(path)
        if not _fires(attributes, watch.sent.get(path), value):
            return
        loop = asyncio.get_running_loop()
        due = watch.last + attributes.get("pmin", 0.0)
        if loop.time() >= due:
            self._notify(watch)
        elif watch.pending is None:
            watch.pending = loop.call_later(due - loop.time(), self._notify, watch)

    def _notify(self, watch: _Watch, *, first: bool = False) -> None:
        """Send the whole observation (every member of a composite) now; pmax starts again."""
        watch.stop()
        loop = asyncio.get_running_loop()
        watch.last = loop.time()
        watch.sent = {p: v for p, v in self.values.items() if any(p.startswith(m) for m in watch.paths)}
        if not first:
            self.notifications += 1
            watch.observation.trigger()
        periods = [self.effective_attributes(m).get("pmax") for m in watch.paths]
        pmax = min((p for p in periods if p is not None and p > 0), default=None)
        if pmax is not None:
            watch.periodic = loop.call_later(pmax, self._notify, watch)

    @property
    def observed(self) -> list[tuple[Path, ...]]:
        return [k for k, v in self._observers.items() if v]

    # --- server → client ---------------------------------------------------------------------------

    def _add_observation(self, request: Any, serverobservation: Any) -> None:
        try:
            paths = self._request_paths(request)
        except Lwm2mFormatError:
            return
        if not any(self._under(p) for p in paths):
            return
        observers = self._observers.setdefault(paths, set())
        observers.add(serverobservation)
        if self.options.attributes:
            watch = self._watches[serverobservation] = _Watch(paths, serverobservation)
            self._notify(watch, first=True)  # the first answer is the render that follows
        token = bytes(request.token)
        self._observation_tokens[token] = (paths, serverobservation)

        def cancelled() -> None:
            observers.discard(serverobservation)
            self._observation_tokens.pop(token, None)
            ended = self._watches.pop(serverobservation, None)
            if ended is not None:
                ended.stop()

        serverobservation.accept(cancelled)

    def _request_paths(self, request: Any) -> tuple[Path, ...]:
        if request.code == AioCode.FETCH:
            cf = request.opt.content_format
            recs = decode(int(cf) if cf is not None else ContentFormat.SENML_JSON, bytes(request.payload))
            return tuple(r.path for r in recs)
        return (Path.parse("/" + "/".join(request.opt.uri_path)),)

    def _under(self, path: Path) -> list[Record]:
        return [Record(p, v) for p, v in sorted(self.values.items()) if p.startswith(path)]

    def _reply(self, code: Any, payload: bytes = b"", cf: int | None = None) -> Any:
        msg = aiocoap.Message(code=code, payload=payload)
        if cf is not None:
            msg.opt.content_format = cf
        if not self.options.con_notifications:
            msg.mtype = aiocoap.NON  # turned into a piggy-backed ACK for the first response
        return msg

    async def _render(self, request: Any) -> Any:
        method = request.code.name
        path_text = "/" + "/".join(request.opt.uri_path)
        self.requests.append((method, path_text))
        try:
            path = Path.parse(path_text)
        except Lwm2mFormatError:
            return self._reply(AioCode.NOT_FOUND)
        try:
            if request.code == AioCode.GET:
                return self._read(request, path)
            if request.code == AioCode.PUT:
                return self._put(request, path)
            if request.code == AioCode.POST:
                return self._post(request, path)
            if request.code == AioCode.DELETE:
                if len(path) != 2 or not self._under(path):
                    return self._reply(AioCode.NOT_FOUND if len(path) == 2 else AioCode.METHOD_NOT_ALLOWED)
                for p in [p for p in self.values if p.startswith(path)]:
                    del self.values[p]
                return self._reply(AioCode.DELETED)
            if request.code == AioCode.FETCH:
                return await self._fetch(request)
        except Lwm2mFormatError as exc:
            return self._reply(AioCode.BAD_REQUEST, exc.reason.encode())
        return self._reply(AioCode.METHOD_NOT_ALLOWED)

    def _accept(self, request: Any, path: Path) -> int:
        accept = request.opt.accept
        if accept is not None:
            return int(accept)
        return self.options.default_format if len(path) < 3 else ContentFormat.TEXT

    def _read(self, request: Any, path: Path) -> Any:
        if request.opt.accept == ContentFormat.LINK_FORMAT:
            return self._discover(path)
        if path and path[0] == 0:
            return self._reply(AioCode.UNAUTHORIZED)
        records = self._under(path)
        if not records:
            return self._reply(AioCode.NOT_FOUND)
        cf = self._accept(request, path)
        if cf not in self.options.formats:
            return self._reply(AioCode.NOT_ACCEPTABLE)
        try:
            payload = encode(cf, records, base_path=path, registry=self.registry)
        except Lwm2mFormatError:
            return self._reply(AioCode.NOT_ACCEPTABLE)
        return self._reply(AioCode.CONTENT, payload, cf)

    def _discover(self, path: Path) -> Any:
        records = self._under(path)
        if not records:
            return self._reply(AioCode.NOT_FOUND)
        targets = sorted({path, *(Path.of(r.path[: max(len(path), 3)]) for r in records)})
        links = [Link(str(t), tuple(self.attributes.get(t, {}).items())) for t in targets]
        return self._reply(AioCode.CONTENT, format_links(links).encode(), ContentFormat.LINK_FORMAT)

    def _decode_body(self, request: Any, path: Path) -> list[Record] | Any:
        cf = request.opt.content_format
        if cf is None or int(cf) not in self.options.formats:
            return self._reply(AioCode.UNSUPPORTED_CONTENT_FORMAT)
        return decode(int(cf), bytes(request.payload), base_path=path, registry=self.registry)

    def _put(self, request: Any, path: Path) -> Any:
        if request.opt.uri_query:
            if self.options.strict_attributes and not self._under(path):
                return self._reply(AioCode.NOT_FOUND)
            attrs = self.attributes.setdefault(path, {})
            for item in request.opt.uri_query:
                name, _, value = item.partition("=")
                if value:
                    attrs[name] = value
                else:
                    attrs.pop(name, None)
            return self._reply(AioCode.CHANGED)
        refused = self._refusal(path)
        if refused is not None:
            return refused
        records = self._decode_body(request, path)
        if not isinstance(records, list):
            return records
        if len(path) == 2:  # replace the instance
            for p in [p for p in self.values if p.startswith(path)]:
                del self.values[p]
        for rec in records:
            if rec.value is not None:
                self.set_value(rec.path, rec.value)
        return self._reply(AioCode.CHANGED)

    def _refusal(self, path: Path) -> Any:
        for refused, code in self.options.refuse_writes.items():
            if refused.startswith(path) or path.startswith(refused):
                return self._reply(AioCode(code), b"refused by the device")
        return None

    def _post(self, request: Any, path: Path) -> Any:
        if len(path) == 3:
            model = self.registry.resource_model(path[0], path[2])
            if model is None or Operations.EXECUTE not in model.operations:
                return self._reply(AioCode.METHOD_NOT_ALLOWED)
            refused = self.options.refuse_executes.get(path)
            if refused is not None:
                return self._reply(AioCode(refused), b"refused by the device")
            self.executed.append((path, bytes(request.payload).decode("utf-8", "replace")))
            return self._reply(AioCode.CHANGED)
        if len(path) == 2:
            if not self._under(path):
                return self._reply(AioCode.NOT_FOUND)
            refused = self._refusal(path)
            if refused is not None:
                return refused
            records = self._decode_body(request, path)
            if not isinstance(records, list):
                return records
            for rec in records:
                if rec.value is not None:
                    self.set_value(rec.path, rec.value)
            return self._reply(AioCode.CHANGED)
        if len(path) == 1:
            records = self._decode_body(request, path)
            if not isinstance(records, list):
                return records
            used = {p[1] for p in self.values if p[0] == path[0]}
            given = {r.path[1] for r in records if len(r.path) >= 2}
            iid = given.pop() if len(given) == 1 else min(set(range(len(used) + 1)) - used)
            for rec in records:
                target = Path(path[0], iid, *rec.path[2:]) if len(rec.path) >= 3 else rec.path
                if rec.value is not None:
                    self.values[target] = rec.value
            response = self._reply(AioCode.CREATED)
            response.opt.location_path = (str(path[0]), str(iid))
            return response
        return self._reply(AioCode.METHOD_NOT_ALLOWED)

    async def _fetch(self, request: Any) -> Any:
        mode = self.options.composite
        if mode == "unsupported":
            return self._reply(AioCode.METHOD_NOT_ALLOWED)
        if mode == "silent":
            await asyncio.sleep(3600)  # aiocoap sends an empty ACK; no answer ever comes (like Wakaama)
        paths = self._request_paths(request)
        records = [r for p in paths for r in self._under(p)]
        cf = int(request.opt.accept) if request.opt.accept is not None else ContentFormat.SENML_JSON
        if cf not in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR) or cf not in self.options.formats:
            return self._reply(AioCode.NOT_ACCEPTABLE)
        return self._reply(AioCode.CONTENT, encode(cf, records, base_path=Path(), registry=self.registry), cf)


@dataclass(eq=False)
class _Watch:
    """One observation's notification state when attributes are honoured."""

    paths: tuple[Path, ...]
    observation: Any
    last: float = 0.0  # loop time of the last notification
    sent: dict[Path, Value] = field(default_factory=dict)  # the values it carried
    pending: asyncio.TimerHandle | None = None  # a notification waiting for pmin
    periodic: asyncio.TimerHandle | None = None  # the pmax notification

    def stop(self) -> None:
        for handle in (self.pending, self.periodic):
            if handle is not None:
                handle.cancel()
        self.pending = self.periodic = None


def _fires(attributes: Mapping[str, float], old: Value | None, new: Value) -> bool:
    """Whether a change from `old` (last notified) to `new` meets the gt/lt/st conditions (any change
    when none is set, or for values that are not numbers)."""
    conditions = [name for name in ("gt", "lt", "st") if name in attributes]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new))
    if old is None or not conditions or not numeric:
        return old != new
    assert isinstance(old, int | float) and isinstance(new, int | float)
    fired = False
    if "st" in attributes:
        fired |= abs(new - old) >= attributes["st"]
    if "gt" in attributes:
        fired |= (old > attributes["gt"]) != (new > attributes["gt"])
    if "lt" in attributes:
        fired |= (old < attributes["lt"]) != (new < attributes["lt"])
    return fired


class AnswerlessClient(asyncio.DatagramProtocol):
    """A client without duplicate detection whose answers never reach the server (a lossy uplink, like a
    cellular link in a bad spot): every request datagram it receives, retransmissions included, is
    executed once more. Bind it to a registered device's port after closing that device."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []  # (method, path) of every request datagram
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def bind(cls, address: tuple[str, int]) -> AnswerlessClient:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(cls, local_addr=address)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self._transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        message = wire.parse(data)
        if message is None or not 1 <= message.code < 32:
            return
        method = {1: "GET", 2: "POST", 3: "PUT", 4: "DELETE", 5: "FETCH"}.get(message.code, str(message.code))
        self.received.append((method, "/" + "/".join(message.uri_path)))

    def executions(self, path: Path) -> int:
        return self.received.count(("POST", str(path)))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


# --- the `simulate` command ------------------------------------------------------------------------------


async def run_fleet(
    server: tuple[str, int],
    devices: int,
    *,
    prefix: str = "sim",
    interval: float = 10.0,
    duration: float | None = None,
    options: SimulatorOptions | None = None,
    psk_key: bytes | None = None,
) -> int:
    """Run `devices` simulated clients: register, Send a temperature every `interval` s, update before
    the lifetime ends, de-register at the end. Returns the number of Sends answered 2.04. With `psk_key`,
    each device speaks DTLS with its endpoint name as PSK identity."""
    chosen = options or SimulatorOptions()
    names = [f"{prefix}-{i:05d}" for i in range(devices)]
    fleet = [
        SimulatedDevice(name, server, options=replace(chosen, psk=(name, psk_key)) if psk_key else chosen)
        for name in names
    ]
    sent = 0
    stop_at = None if duration is None else time.monotonic() + duration

    async def one(dev: SimulatedDevice) -> None:
        nonlocal sent
        await dev.start()
        await asyncio.sleep(random.uniform(0, min(interval, 5.0)))
        response = await dev.register()
        log.info("%s: register → %s %s", dev.endpoint, response.code, "/".join(dev.location or ()))
        last_update = time.monotonic()
        while stop_at is None or time.monotonic() < stop_at:
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            dev.set_value(Path(3303, 0, 5700), round(20 + random.uniform(-5, 5), 2))
            with contextlib.suppress(TimeoutError, aiocoap.error.Error):
                response = await dev.send([Path(3303, 0, 5700)])
                sent += response.code == AioCode.CHANGED
            if time.monotonic() - last_update > dev.options.lifetime * 0.8:
                await dev.update()
                last_update = time.monotonic()
        with contextlib.suppress(TimeoutError, aiocoap.error.Error):
            await dev.deregister()

    try:
        async with asyncio.TaskGroup() as group:
            for dev in fleet:
                group.create_task(one(dev))
    finally:
        for dev in fleet:
            await dev.close()
    return sent
