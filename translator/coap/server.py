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

This class wires the parts and runs them: the checks (gatekeeper.py), the registered devices
(device_table.py), the registration interface (registration_face.py), telemetry and notifications
(telemetry_face.py), the aiocoap resource that routes to them (resource.py), the datagram tap (hotpath.py),
the device manager (management.py), and the listener's sockets (listener.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from translator.coap.credentials import Credentials
from translator.coap.dedup import DedupCache
from translator.coap.device_table import DeviceTable
from translator.coap.gatekeeper import Gatekeeper
from translator.coap.hooks import ObjectsCheck, RefusalHook, RegisterGate, ignore_refusal
from translator.coap.hotpath import DatagramTap
from translator.coap.identity import IdentityResolver
from translator.coap.listener import AIOCOAP_LOGGER, open_context, recv_size, start_dtls
from translator.coap.management import DeviceManager
from translator.coap.ratelog import LogBudget, RateLimitFilter
from translator.coap.registration import Registration, RegistrationStore
from translator.coap.registration_face import RegistrationFace
from translator.coap.resource import Lwm2mResource
from translator.coap.responder import Responder
from translator.coap.settings import CoapSettings
from translator.coap.sink import TelemetrySink
from translator.coap.snapshot import RegistrationJournal, RegistrationSnapshot
from translator.coap.telemetry_face import NotificationsOnly, TelemetryFace
from translator.lwm2m import ObjectRegistry

if TYPE_CHECKING:
    from translator.coap.dtls.endpoint import DtlsEndpoint

log = logging.getLogger(__name__)


class Lwm2mServer:
    """Owns the aiocoap context, the datagram tap, the registered devices and the housekeeping task."""

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
        # With credentials the DTLS port opens, and the plain port refuses the endpoints they secure.
        self._credentials = credentials
        self._dtls: DtlsEndpoint | None = None
        self._clock = clock
        self._wallclock = wallclock
        self._table = DeviceTable(
            settings=settings, sink=sink, clock=clock, wallclock=wallclock, journal=journal
        )
        self.store: RegistrationStore = self._table.store
        self._gatekeeper = Gatekeeper(
            settings=settings,
            store=self.store,
            clock=clock,
            resolver=resolver,
            credentials=credentials,
            objects_check=objects_check,
        )
        self._dedup = DedupCache(
            per_peer=settings.dedup_per_peer,
            max_peers=settings.dedup_max_peers,
            max_entries=settings.dedup_max_entries,
            lifetime=settings.dedup_lifetime,
        )
        self.tap = DatagramTap(
            dedup=self._dedup, clock=clock, recv_size=recv_size(settings), entity_limit=settings.max_payload
        )
        self._log_filter = RateLimitFilter(LogBudget(clock=clock))
        self._responder = Responder(
            self.tap, self._dedup, sink_timeout=settings.sink_timeout, clock=clock, on_refused=on_refused
        )
        self.devices = DeviceManager(
            settings=settings,
            sink=sink,
            devices=self._table.devices,
            tap=self.tap,
            dedup=self._dedup,
            responder=self._responder,
            clock=clock,
            wallclock=wallclock,
            lifetime_written=self._table.lifetime_written,
            on_change=self._table.changed,
        )
        self._registrations = RegistrationFace(
            settings=settings,
            table=self._table,
            manager=self.devices,
            gatekeeper=self._gatekeeper,
            registry=registry or ObjectRegistry.builtin(),
            clock=clock,
            register_gate=register_gate,
        )
        self._telemetry = TelemetryFace(
            settings=settings,
            sink=sink,
            table=self._table,
            manager=self.devices,
            gatekeeper=self._gatekeeper,
            tap=self.tap,
            responder=self._responder,
            dedup=self._dedup,
            clock=clock,
            wallclock=wallclock,
        )
        self._root = Lwm2mResource(
            settings=settings,
            registrations=self._registrations,
            telemetry=self._telemetry,
            on_refused=on_refused,
            clock=clock,
        )
        self._context: Any = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._address: tuple[str, int] | None = None

    # --- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        # aiocoap logs a line per unexpected message; a flood of them must not become a flood of lines
        logging.getLogger(AIOCOAP_LOGGER).addFilter(self._log_filter)
        self._context, interface, self._address = await open_context(
            self._root, self.settings, dedup=self._dedup, share_port=self._share_port
        )
        # With hot_path off the tap still reads the socket and carries Observe exchanges.
        handler = self._telemetry if self.settings.hot_path else NotificationsOnly(self._telemetry)
        self.tap.attach(interface, handler, receive_buffer=self.settings.receive_buffer)
        self.devices.bind(self._context, interface)
        if self._credentials is not None and self.settings.dtls:
            self._dtls = await start_dtls(
                self.settings,
                self._credentials,
                deliver=self.tap.secure_received,
                clock=self._clock,
                share_port=self._share_port,
            )
            self._gatekeeper.sessions = self._dtls
            self.tap.secure(self._dtls)
        self._housekeeping = asyncio.get_running_loop().create_task(
            self._housekeep(), name="coap-housekeeping"
        )
        log.info(
            "LwM2M server listening on %s port %d (hot path %s)",
            self.settings.host,
            self._address[1],
            "on" if self.settings.hot_path else "off",
        )

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
            self._housekeeping = None
        self._registrations.end_all()
        await self._responder.close()
        await self.devices.close()
        if self._dtls is not None:
            await self._dtls.stop()
            self._dtls = None
            self._gatekeeper.sessions = None
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

    async def _housekeep(self) -> None:
        last_sweep = self._clock()
        while True:
            await asyncio.sleep(self.settings.tick)
            now = self._clock()
            try:
                self._registrations.expire(now)
                self.devices.expire_held(now)
                self._responder.sweep(now)
                if now - last_sweep > 10.0:
                    last_sweep = now
                    self._dedup.sweep(now)
                    self._gatekeeper.sweep(now)
                self._root.expire(now)
            except Exception:
                log.exception("housekeeping failed")

    # --- what the owner asks -----------------------------------------------------------------------

    @property
    def dtls(self) -> DtlsEndpoint | None:
        return self._dtls

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the listener is bound to."""
        if self._address is None:
            raise RuntimeError("server not started")
        return self._address

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def registrations_total(self) -> int:
        """Every successful Register since start, re-registrations included."""
        return self._registrations.registrations_total

    def registration(self, endpoint: str) -> Registration | None:
        return self.store.by_endpoint(endpoint)

    def snapshot(self, endpoint: str) -> RegistrationSnapshot | None:
        """The registration of `endpoint` and its observations as they are now; None when not registered."""
        return self._table.snapshot(endpoint)

    def restore(self, snapshots: Sequence[RegistrationSnapshot]) -> list[RegistrationSnapshot]:
        """Take back registrations and observations kept by a previous run, before the socket opens: a
        notification on a restored token is telemetry, an Update of `rd/<id>` and a Send from the restored
        address are accepted, with nothing sent to the device. Returns the snapshots taken (an endpoint
        registered meanwhile keeps its new registration)."""
        return self._registrations.restore(snapshots, self.tap.observe_token)

    def stats(self) -> dict[str, int]:
        return {
            **self.tap.counters,
            "registrations": len(self.store),
            "dedup_entries": len(self._dedup),
            "dedup_peers": self._dedup.peers,
            "block_transfers": self._root.block_transfers,
            "ingest_identities": self._gatekeeper.ingest_identities,
            "sink_inflight": self._responder.inflight,
            **(
                {"dtls_sessions": len(self._dtls.table), "dtls_handshaking": self._dtls.table.handshaking}
                | {f"dtls_{name}": count for name, count in self._dtls.table.counters.items()}
                if self._dtls is not None
                else {}
            ),
        }
