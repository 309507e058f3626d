"""`iotc-translator serve`: the CoAP face, the bridge, the session pool, the store and the operations
endpoint, started and stopped as one. With no IoT Central configured, the built-in emulator is started in
the same process and everything is pointed at it: the embedded default."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from translator import __version__
from translator.bridge import Bridge, CodecCatalog
from translator.bridge.assignments import StoreAssignments
from translator.bridge.codec_admission import CodecAdmission
from translator.bridge.http_ingest import HttpIngest
from translator.cluster.register_claim import RETRY_AFTER, RegisterClaim
from translator.cluster.setup import ownership_for, quota_share_for, relay_for, sweeper_for
from translator.coap import CoapSettings, Lwm2mServer
from translator.coap.credentials import StoreCredentials
from translator.coap.hooks import gates_in_order
from translator.codec import CodecError
from translator.codec.transform_loader import load_transform_file
from translator.embedded import emulator_lines, start_emulator
from translator.gateway.commands import GatewayCommands
from translator.gateway.device import GatewayDevice
from translator.gateway.health import Figures
from translator.http.server import V1_PATH, HttpBridgeServer
from translator.iotc.client.dps_client import DpsEndpoint
from translator.iotc.client.pool import PoolSettings, SessionPool
from translator.iotc.client.session import HubEndpoint, SessionSettings
from translator.iotc.protocol.approval_wait import ApprovalPolicy
from translator.iotc.protocol.backoff import BackoffPolicy
from translator.iotc.protocol.sas import TokenPolicy
from translator.lwm2m import RegisteredObjects
from translator.ops.collector import SettlePolicy, settle_after_waves, tune_gc
from translator.ops.heap import libc_trim, trim_periodically
from translator.ops.http import OpsServer
from translator.ops.metrics import Metrics
from translator.private_files import private_dir
from translator.settings import IotcSettings, Settings
from translator.store import StoreError
from translator.store.factory import store_from_settings

if TYPE_CHECKING:
    from emulator.app import Emulator
    from translator.cluster.node_relay import NodeRelay
    from translator.cluster.quota_share import QuotaShare
    from translator.cluster.redis_ownership import RedisOwnership
    from translator.cluster.sweeper import OrphanSweeper

log = logging.getLogger(__name__)


class Translator:
    """Everything `serve` runs; `start()` then `stop()` (or `async with`).

    A worker of `serve --workers N` (translator/workers/) is one too, with `share_ports` (its sockets bound
    with SO_REUSEPORT next to the other workers') and `emulated`: the IoT Central settings of the embedded
    emulator its supervisor runs, so the worker keeps the embedded default's posture without starting one."""

    def __init__(
        self,
        settings: Settings,
        *,
        share_ports: bool = False,
        emulated: IotcSettings | None = None,
        quota_nodes: int = 1,
    ) -> None:
        self.settings = settings
        self.emulator: Emulator | None = None
        self.iotc: IotcSettings = emulated or settings.iotc
        self._emulated = emulated is not None
        self._share_ports = share_ports
        self._quota_nodes = quota_nodes  # at least this many nodes share the quotas (a worker: its siblings)
        self.metrics = Metrics()
        self.store = store_from_settings(settings)
        self.catalog = CodecCatalog.from_settings(settings.codec)
        self.registry = self.catalog.registry
        self.pool: SessionPool | None = None
        self.ownership: RedisOwnership | None = None
        self.relay: NodeRelay | None = None
        self.quota_share: QuotaShare | None = None
        self.sweeper: OrphanSweeper | None = None
        self.bridge: Bridge | None = None
        self.coap: Lwm2mServer | None = None
        self.ops: OpsServer | None = None
        self.http: HttpBridgeServer | None = None
        self.gateway: GatewayDevice | None = None
        self._settler: asyncio.Task[None] | None = None
        self._trimmer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        private_dir(self.settings.state_dir)  # keys live here (store, minted certificates, emulator)
        real_iotc = self.settings.iotc.configured and not self._emulated
        posture = plain_posture(self.settings.coap, real_iotc=real_iotc)
        if not real_iotc and not self._emulated:
            self.emulator, self.iotc = await start_emulator(self.settings, self.catalog)
        ephemeral = self.settings.ephemeral
        if self.emulator is not None:  # its hub's HTTPS device API, for ephemeral devices
            ephemeral = replace(ephemeral, hub_https_port=self.emulator.https_port)
        settings = replace(self.settings, iotc=self.iotc, coap=posture, ephemeral=ephemeral)
        await self.store.open()
        self.ownership = ownership_for(self.store, settings.store)
        if self.ownership is not None:
            await self.ownership.start()  # beating before the first claim
        iotc = self.iotc
        self.pool = SessionPool(
            dps=DpsEndpoint(iotc.id_scope, host=iotc.dps_host, port=iotc.dps_port, ca_file=iotc.ca_file),
            hub=HubEndpoint(gateway_host=iotc.gateway_host, port=iotc.hub_port, ca_file=iotc.ca_file),
            settings=PoolSettings(
                max_sessions=iotc.max_sessions,
                connect_rate=iotc.connect_rate,
                dps_per_minute=iotc.dps_registrations_per_minute,
                telemetry_rate=iotc.telemetry_rate,
                device_telemetry_rate=iotc.device_telemetry_rate,
                twin_rate=iotc.twin_update_rate,
                idle_timeout=iotc.idle_timeout or None,
                transport=iotc.transport,
            ),
            session_settings=SessionSettings(
                keep_alive=iotc.keep_alive,
                token_policy=TokenPolicy(ttl=iotc.token_ttl),
                backoff=BackoffPolicy(base=iotc.reconnect_min, cap=iotc.reconnect_max),
                approval=ApprovalPolicy(base=iotc.approval_retry, cap=iotc.approval_retry_max),
            ),
            assignments=StoreAssignments(self.store),
        )
        self.quota_share = quota_share_for(self.ownership, self.pool.pacing, at_least=self._quota_nodes)
        if self.quota_share is not None:
            await self.quota_share.start()  # before the first device asks DPS or the hub
        self.metrics.add_callback(
            self.pool.pacer_gauges,
            {name: ["pacer"] for name in self.pool.pacer_gauges()},
        )
        self.bridge = Bridge(
            settings,
            store=self.store,
            pool=self.pool,
            catalog=self.catalog,
            metrics=self.metrics,
            ownership=self.ownership,
        )
        self.coap = Lwm2mServer(
            settings.coap,
            self.bridge,
            registry=self.registry,
            objects_check=self.objects_check,
            on_refused=self.metrics.count_refused,
            journal=self.bridge.journal,
            credentials=StoreCredentials(self.store, unavailable=StoreError, retry_after=RETRY_AFTER),
            share_port=self._share_ports,
            # A Register whose imported codec does not load is refused 4.03; on a shared store a Register
            # then claims its device; 5.03 + Max-Age when Redis is away.
            register_gate=gates_in_order(
                CodecAdmission(self.store, self.catalog),
                RegisterClaim(self.ownership) if self.ownership is not None else None,
            ),
        )
        self.bridge.attach(self.coap)
        await self._start_gateway(self.bridge, self.pool)  # before devices register downstream of it
        await self.bridge.restore()  # before the socket opens: no restored token is ever answered RST
        self.relay = relay_for(self.ownership, self.coap)
        if self.relay is not None:
            # Before the socket opens: datagrams of devices owned elsewhere go to their owner from the first.
            await self.relay.start()
            self.bridge.seen_at = self.relay.seen
        await self.coap.start()
        self.metrics.add_callback(self._dtls_gauges, {"iotc_translator_dtls_events": ["event"]})
        self.bridge.start_restored()
        await self.bridge.resume()
        self.sweeper = sweeper_for(self.ownership, self.bridge.adopt)  # a dead node's devices, later
        operations = settings.operations
        self.ops = OpsServer(self.metrics, self.bridge.health, host=operations.host, port=operations.port)
        await self.ops.start()
        chosen = settings.http
        if chosen.enabled:
            self.http = HttpBridgeServer(
                HttpIngest(
                    self.bridge,
                    None if chosen.transforms is None else load_transform_file(chosen.transforms),
                ),
                host=chosen.host,
                port=chosen.port,
                key=chosen.secret(),
                timeout=chosen.timeout,
                reuse_port=self._share_ports,
            )
            await self.http.start()
        # Everything built so far lives as long as the server: move it out of the cyclic collector's reach and
        # make young collections rarer (full collections of a loaded heap paused the loop for ~200 ms).
        tune_gc()
        coap = self.coap
        self._settler = asyncio.get_running_loop().create_task(
            settle_after_waves(lambda: (coap.registrations_total, len(coap.store)), SettlePolicy()),
            name="gc-settle",
        )
        self._trimmer = asyncio.get_running_loop().create_task(
            trim_periodically(libc_trim()), name="heap-trim"
        )
        dtls = self.coap.dtls
        log.info(
            "translator ready: LwM2M on udp %s:%d%s",
            settings.coap.host,
            self.coap.port,
            f", DTLS on udp {settings.coap.host}:{dtls.port}" if dtls is not None else "",
        )

    async def _start_gateway(self, bridge: Bridge, pool: SessionPool) -> None:
        chosen = self.settings.gateway
        if not chosen.enabled:
            return
        self.gateway = GatewayDevice(
            chosen,
            pool=pool,
            credential=await bridge.credential_for(chosen.device_id, None),
            figures=self._gateway_figures,
            properties=self._gateway_properties,
            commands=GatewayCommands(bridge.lives, pool, self.store.outbox_size),
        )
        await self.gateway.start()

    def _gateway_figures(self) -> Figures:
        assert self.pool is not None and self.bridge is not None
        sessions = {
            k.split(":", 1)[1]: v for k, v in self.pool.metrics().items() if k.startswith("sessions:")
        }
        delivered = self.metrics.registry.get_sample_value("iotc_translator_messages_out_total")
        return Figures(
            at=time.monotonic(),
            devices=len(self.bridge.lives),
            registrations=len(self.coap.store) if self.coap is not None else 0,
            sessions=sessions,
            outbox_depth=self.store.outbox_size(),
            messages_out=delivered or 0.0,
        )

    def _gateway_properties(self) -> dict[str, Any]:
        dtls = self.coap.dtls if self.coap is not None else None
        ports = {
            "coap": self.coap.port if self.coap is not None else 0,
            "coaps": dtls.port if dtls is not None else 0,
            "operations": self.ops.port if self.ops is not None else 0,
            "http": self.http.port if self.http is not None else 0,
        }
        return {"version": __version__, "listeningPorts": {k: v for k, v in ports.items() if v}}

    def _dtls_gauges(self) -> dict[str, dict[tuple[str, ...], float]]:
        """Open DTLS sessions, handshakes under way, and what happened to handshakes since start."""
        dtls = self.coap.dtls if self.coap is not None else None
        if dtls is None:
            return {}
        table = dtls.table
        return {
            "iotc_translator_dtls_sessions": {(): float(len(table))},
            "iotc_translator_dtls_handshaking": {(): float(table.handshaking)},
            "iotc_translator_dtls_events": {(name,): float(count) for name, count in table.counters.items()},
        }

    def objects_check(self, objects: RegisteredObjects) -> str | None:
        """Whether a registration's objects make a device template IoT Central accepts; why not if not.

        Checked at Register/Update so the device hears 4.00 once (and the operator reads one log line),
        instead of every later Send failing with 5.00 when the bridge cannot build the codec. The limit
        that matters: an interface holds at most 300 contents, and every object instance is a component
        of the root interface (DTDL v2, the version IoT Central uses,
        https://azure.github.io/opendigitaltwins-dtdl/DTDL/v2/DTDL.v2.html#interface ; components:
        https://learn.microsoft.com/en-us/azure/iot-central/core/concepts-device-templates).
        Checked against the default codec: an imported device with its own codec file is refused too.
        """
        try:
            self.catalog.for_objects(objects.instances, dict(objects.objects))
        except CodecError as error:
            return f"its objects do not fit an IoT Central device template: {error}"
        return None

    async def stop(self) -> None:
        for task in (self._settler, self._trimmer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._settler = self._trimmer = None
        if self.ops is not None:
            await self.ops.stop()
        if self.http is not None:
            await self.http.stop()
        if self.gateway is not None:
            await self.gateway.close()
        if self.bridge is not None:
            # Every registration as it is now, before the face's shutdown ends them (no de-registration).
            await self.bridge.journal.close()
        if self.sweeper is not None:
            await self.sweeper.stop()
            self.sweeper = None
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None
        if self.coap is not None:
            await self.coap.stop()
        if self.bridge is not None:
            await self.bridge.close()
        if self.pool is not None:
            await self.pool.close()
        if self.quota_share is not None:
            await self.quota_share.stop()
            self.quota_share = None
        if self.ownership is not None:
            await self.ownership.stop()  # a graceful leave: others take the devices now, not after the TTL
            self.ownership = None
        await self.store.close()
        if self.emulator is not None:
            await self.emulator.stop()

    async def __aenter__(self) -> Translator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def how_to_try(self) -> str:
        assert self.coap is not None and self.ops is not None
        port = self.coap.port
        lines = [
            "iotc-translator is running.",
            f"  LwM2M server:      coap://127.0.0.1:{port}  (register devices here)",
            *(
                [f"  LwM2M over DTLS:   coaps://127.0.0.1:{self.coap.dtls.port}  (PSKs: devices import)"]
                if self.coap.dtls is not None
                else []
            ),
            f"  metrics / health:  http://{self.settings.operations.host}:{self.ops.port}/metrics  /healthz",
            *(
                [f"  HTTP bridge (v1):  http://{self.settings.http.host}:{self.http.port}{V1_PATH}?code=KEY"]
                if self.http is not None
                else []
            ),
        ]
        if self.emulator is not None:
            lines += emulator_lines(self.emulator, port)
        elif self.iotc.id_scope:
            lines.append(f"  IoT Central:       ID scope {self.iotc.id_scope}")
        else:
            lines.append("  IoT Hub:           devices imported with a connection string (iotc.hub_only)")
        return "\n".join(lines)


def plain_posture(coap: CoapSettings, *, real_iotc: bool) -> CoapSettings:
    """The safe default: with a real IoT Central (devices cost money and reach a customer's application), the
    plain port, which cannot tell a device from anyone who knows its name, admits only the `coap.allow`
    list unless the operator opts in. The embedded emulator keeps the two-command demo open."""
    if not real_iotc or not coap.auto_register:
        return coap
    if coap.insecure_auto_register:
        log.warning(
            "coap.insecure_auto_register is on: any endpoint name may register on the plain CoAP port and "
            "become a device in IoT Central; give devices PSKs (devices import) and use the DTLS port"
        )
        return coap
    log.info(
        "plain CoAP admits only coap.allow (%d names); devices with PSKs register over DTLS "
        "(coap.insecure_auto_register = true admits any name)",
        len(coap.allow),
    )
    return replace(coap, auto_register=False)


def loop_factory(event_loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `serve` runs on: uvloop (libuv) cuts the event loop's own cost per message by about
    a third (benchmarks/bench_throughput.py); "auto" takes it when installed. None: asyncio's default."""
    if event_loop == "asyncio" or (event_loop == "auto" and importlib.util.find_spec("uvloop") is None):
        return None
    import uvloop

    return uvloop.new_event_loop


def run(settings: Settings) -> None:
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        runner.run(serve(settings))


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with Translator(settings) as translator:
        print(translator.how_to_try(), flush=True)
        await stop.wait()
        log.info("stopping")
