"""Telemetry into the CoAP face: Send (`POST /dp`) and plain CBOR ingest (`POST /ingest`), on the hot
path (the datagram tap's handler) or through aiocoap, and the notifications of active observations.

Both paths decode alike (`decode`) and hand the records to the sink; a confirmable request is answered
2.04 only once the sink has the data safe (sink.acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiocoap
from aiocoap.numbers.codes import Code as AioCode

from translator.coap import wire
from translator.coap.dedup import DedupCache
from translator.coap.device_table import DeviceTable
from translator.coap.dtls.peers import is_virtual
from translator.coap.errors import Code, RequestRejected, UnknownRegistration
from translator.coap.gatekeeper import Gatekeeper, claimed_endpoint
from translator.coap.hotpath import DatagramTap
from translator.coap.identity import DeviceIdentity
from translator.coap.ingest import decode_ingest, decode_send
from translator.coap.management import DeviceManager
from translator.coap.registration import Peer
from translator.coap.responder import Responder
from translator.coap.routes import Route, served
from translator.coap.settings import CoapSettings
from translator.coap.sink import TelemetryRecord, TelemetrySink, TelemetrySource, acknowledged
from translator.ops.logs import device_log

log = logging.getLogger(__name__)


class TelemetryFace:
    """The datagram tap's handler (`HotHandler`): telemetry requests and notifications."""

    def __init__(
        self,
        *,
        settings: CoapSettings,
        sink: TelemetrySink,
        table: DeviceTable,
        manager: DeviceManager,
        gatekeeper: Gatekeeper,
        tap: DatagramTap,
        responder: Responder,
        dedup: DedupCache,
        clock: Callable[[], float],
        wallclock: Callable[[], float],
    ) -> None:
        self._max_payload = settings.max_payload
        self._sink_timeout = settings.sink_timeout
        self._sink = sink
        self._table = table
        self._store = table.store
        self._devices = table.devices
        self._manager = manager
        self._gatekeeper = gatekeeper
        self._tap = tap
        self._responder = responder
        self._dedup = dedup
        self._clock = clock
        self._wallclock = wallclock

    def decode(
        self, route: Route, peer: Peer, query: Sequence[str], content_format: int | None, payload: bytes
    ) -> tuple[DeviceIdentity, list[TelemetryRecord], TelemetrySource]:
        """Decode a Send or ingest request (shared by the hot and the aiocoap path)."""
        if route is Route.SEND:
            reg = self._store.by_peer(peer)
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
                max_payload=self._max_payload,
            )
            # Every device, not only queue mode: a lifetime-0 registration lives as long as it is heard.
            self._manager.wake(dev, self._clock())
            return reg.identity, list(records), TelemetrySource.SEND
        identity = self._gatekeeper.ingest_identity(query, peer)
        return (
            identity,
            decode_ingest(content_format, payload, now=self._wallclock(), max_payload=self._max_payload),
            TelemetrySource.INGEST,
        )

    async def slow(self, request: Any, route: Route) -> Any:
        """A telemetry request aiocoap parsed (the hot path off, or handed on: block-wise, unknown name)."""
        if route is Route.INGEST and not is_virtual(request.remote.sockaddr):
            claimed = claimed_endpoint(tuple(request.opt.uri_query))
            if claimed is not None and not self._gatekeeper.knows_ingest(claimed):
                await self._gatekeeper.refuse_secured(claimed)  # then remembered: the hot path serves it next
        confirmable = request.mtype == aiocoap.CON
        cf = request.opt.content_format
        device, records, source = self.decode(
            route,
            request.remote.sockaddr,
            tuple(request.opt.uri_query),
            None if cf is None else int(cf),
            bytes(request.payload),
        )
        result = self._sink.on_records(device, records, source, confirmable=confirmable)
        if confirmable:
            answer: object = result
            if isinstance(result, Awaitable):
                async with asyncio.timeout(self._sink_timeout):
                    answer = await result
            acknowledged(answer)  # anything but an Outcome raises: 5.00, never 2.04
        elif isinstance(result, Awaitable):
            self._manager.adopt(result)
        return aiocoap.Message(code=AioCode.CHANGED)

    # --- the hot path (HotHandler) ------------------------------------------------------------------

    def hot_request(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None) -> bool:
        path = msg.uri_path
        if not served(path):
            # Answered here, not by aiocoap (~0.25 ms each): a flood of these must not starve the devices.
            refusal = RequestRejected(f"no resource /{'/'.join(path)}", Code.NOT_FOUND)
            self._responder.answer_error(msg, peer, pktinfo, refusal)
            return True
        if msg.code != Code.POST or len(path) != 1 or path[0] == "rd":
            return False
        route = Route.SEND if path[0] == "dp" else Route.INGEST
        if (
            route is Route.INGEST
            and self._gatekeeper.has_credentials
            and not is_virtual(peer)
            and not self._gatekeeper.knows_ingest(claimed_endpoint(msg.uri_query))
        ):
            return False  # a name not seen lately: the slow path awaits whether it is secured
        cached = self._dedup.check(peer, msg.mid, self._clock())
        if cached is not None:
            if cached:
                self._tap.send(cached, peer, pktinfo)
            return True
        confirmable = msg.mtype == wire.CON
        responder = self._responder
        try:
            device, records, source = self.decode(route, peer, msg.uri_query, msg.content_format, msg.payload)
            result = self._sink.on_records(device, records, source, confirmable=confirmable)
        except Exception as exc:
            responder.answer_error(msg, peer, pktinfo, exc)
            return True
        if confirmable:
            responder.await_sink(result, msg, peer, pktinfo)
        else:  # best effort: answered at once, delivered in the background
            if isinstance(result, Awaitable):
                self._manager.adopt(result)
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
            self._table.moved(dev, peer)
        self._manager.notification(msg, peer, pktinfo, observer)


class NotificationsOnly:
    """Tap handler for `hot_path=False`: requests go to aiocoap, notifications still work."""

    def __init__(self, face: TelemetryFace) -> None:
        self._face = face

    def hot_request(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None) -> bool:
        return False

    def notification(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, observer: Any) -> None:
        self._face.notification(msg, peer, pktinfo, observer)
