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
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiocoap
import aiocoap.interfaces
from aiocoap.numbers.codes import Code as AioCode

from translator.coap import wire
from translator.coap.simnat import NatRelay
from translator.coap.simobjects import ObjectsResource, SimulatedObjects
from translator.coap.simoptions import DEFAULT_FORMATS, SimulatorOptions, default_values
from translator.lwm2m import (
    ContentFormat,
    Link,
    ObjectRegistry,
    Path,
    Record,
    Value,
    encode,
    format_links,
)

if TYPE_CHECKING:
    from translator.coap.dtls.client import DtlsRelay

log = logging.getLogger(__name__)

# Re-exported: tests and the CLI build devices from this module.
__all__ = [
    "DEFAULT_FORMATS",
    "AnswerlessClient",
    "SimulatedDevice",
    "SimulatedObjects",
    "SimulatorOptions",
    "default_values",
    "run_fleet",
]


class SimulatedDevice(SimulatedObjects):
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
        super().__init__(options=options, values=values, registry=registry)
        self.endpoint = endpoint
        self.server = server
        self.location: tuple[str, ...] | None = None
        self._bind = bind
        self._context: Any = None
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
            ObjectsResource(self),
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
