"""The session pool: one object owns every device session, as httpcore's pool owns connections.

Limits (maximum sessions; the fleet's pacers, translator/iotc/client/pacer.py: DPS registrations, new hub
connections, telemetry and twin updates, each at its own documented rate), lazy connect on first need, idle
eviction for devices that only send occasionally (pinned devices — with commands or subscriptions pending —
stay connected), assignment caching, metrics and orderly shutdown live here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Protocol

from translator.iotc.client.credentials import Credential, TlsContexts, X509Identity
from translator.iotc.client.dps_client import DpsEndpoint, provision
from translator.iotc.client.ephemeral import EphemeralSettings, EphemeralUplinks
from translator.iotc.client.lean_transport import ConnectionGroup, LeanTransport
from translator.iotc.client.pacer import FleetPacing, PacingSettings
from translator.iotc.client.session import (
    DeviceSession,
    HubEndpoint,
    Provisioner,
    SessionCallbacks,
    SessionSettings,
    SessionState,
)
from translator.iotc.client.transport import MessageHandler, MqttTransport
from translator.iotc.protocol.dps import Assigned
from translator.iotc.protocol.errors import DeviceBlockedError, IotcError, ProvisioningError
from translator.ops.logs import device_log

log = logging.getLogger(__name__)


class PoolFullError(IotcError):
    """Every session slot is taken by a busy or pinned session."""


class AssignmentCache(Protocol):
    """Where DPS assignments are kept between runs (the store implements it; `MemoryAssignments`: a dict)."""

    async def get_assignment(self, device_id: str) -> Assigned | None: ...

    async def put_assignment(self, device_id: str, assignment: Assigned) -> None: ...


@dataclass(slots=True)
class MemoryAssignments:
    entries: dict[str, Assigned] = field(default_factory=dict)

    async def get_assignment(self, device_id: str) -> Assigned | None:
        return self.entries.get(device_id)

    async def put_assignment(self, device_id: str, assignment: Assigned) -> None:
        self.entries[device_id] = assignment


@dataclass(frozen=True, slots=True)
class PoolSettings:
    max_sessions: int = 100_000
    # Pacers (0 turns one off); the documented quotas behind the defaults: translator/settings.py.
    connect_rate: float = 100.0  # new hub connections per second
    connect_burst: int = 10
    dps_per_minute: float = 200.0  # DPS registrations (devices with a cached assignment skip DPS)
    telemetry_rate: float = 100.0  # device-to-cloud messages per second, all devices together
    device_telemetry_rate: float = 10.0  # per device
    twin_rate: float = 100.0  # reported-property updates per second, all devices together
    idle_timeout: float | None = None  # seconds without traffic before an unpinned session closes
    transport: str = "lean"  # "lean" or "aiomqtt"
    keep_alive_tick: float = 5.0


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    device_id: str
    credential: Credential
    model_id: str | None = None
    callbacks: SessionCallbacks = field(default_factory=SessionCallbacks)
    gateway_id: str | None = None  # registered as a downstream device of this gateway (translator/gateway)


class AssignmentUnavailableError(ProvisioningError):
    """The assignment cache failed (the store, usually): transient, the session backs off and retries."""


class SessionPool:
    def __init__(
        self,
        *,
        dps: DpsEndpoint,
        hub: HubEndpoint,
        settings: PoolSettings | None = None,
        session_settings: SessionSettings | None = None,
        assignments: AssignmentCache | None = None,
    ) -> None:
        self._dps = dps
        self._hub = hub
        self.settings = settings or PoolSettings()
        self._session_settings = session_settings or SessionSettings()
        self._assignments: AssignmentCache = assignments or MemoryAssignments()
        chosen = self.settings
        self.pacing = FleetPacing(
            PacingSettings(
                dps_per_minute=chosen.dps_per_minute,
                hub_connects_per_second=chosen.connect_rate,
                hub_connect_burst=chosen.connect_burst,
                telemetry_per_second=chosen.telemetry_rate,
                device_telemetry_per_second=chosen.device_telemetry_rate,
                twin_updates_per_second=chosen.twin_rate,
            )
        )
        self._group = ConnectionGroup(tick=self.settings.keep_alive_tick)
        self._tls = TlsContexts(hub.ca_file)
        self._sessions: dict[str, DeviceSession] = {}
        self._specs: dict[str, DeviceSpec] = {}
        self._pinned: set[str] = set()
        self._evictor: asyncio.Task[None] | None = None
        self._uplinks: list[EphemeralUplinks] = []
        self._closed = False
        self.counters: Counter[str] = Counter()

    # -- transports and gates -----------------------------------------------------------------------

    def transport_factory(self, on_message: MessageHandler) -> MqttTransport:
        if self.settings.transport == "aiomqtt":
            from translator.iotc.client.aiomqtt_transport import AiomqttTransport

            return AiomqttTransport(on_message)
        return LeanTransport(on_message, self._group)

    def _provisioner(self, spec: DeviceSpec) -> Provisioner:
        # Whether DPS refused this device last time as not approved or blocked: its next registration waits
        # in the DPS pacer's deferred lane, behind every device asking for the first time.
        not_approved = False

        async def assignment(refused: bool) -> Assigned:
            nonlocal not_approved
            if not refused:
                try:
                    cached = await self._assignments.get_assignment(spec.device_id)
                except Exception as error:
                    # Whatever the cache is built on failed: the session backs off and retries.
                    raise AssignmentUnavailableError(f"assignment cache: {error}") from error
                if cached is not None and spec.gateway_id in (None, cached.gateway_id):
                    return cached
                if cached is not None:
                    # Assigned before this translator became its gateway: only a DPS registration naming
                    # the gateway makes IoT Central attach the device to it.
                    device_log(log, spec.device_id).info(
                        "pool: registering again through DPS to attach the device to gateway %s",
                        spec.gateway_id,
                    )
            self.counters["dps_registrations"] += 1
            gate = self.pacing.registration_deferred if not_approved else self.pacing.registration
            try:
                assigned = await provision(
                    self._dps,
                    spec.device_id,
                    spec.credential,
                    transport_factory=self.transport_factory,
                    model_id=spec.model_id,
                    gateway_id=spec.gateway_id,
                    registration_gate=gate,
                    on_throttled=self.pacing.registration_throttled,
                )
            except DeviceBlockedError:
                not_approved = True
                raise
            not_approved = False
            try:
                await self._assignments.put_assignment(spec.device_id, assigned)
            except Exception:
                # The assignment is good; only the next start runs DPS again for lack of it.
                device_log(log, spec.device_id).warning("pool: assignment not cached", exc_info=True)
            return assigned

        return assignment

    def ephemeral_uplinks(self, settings: EphemeralSettings) -> EphemeralUplinks:
        """Sessionless uplinks for ephemeral devices, sharing this pool's TLS contexts, transport and pacers;
        `provisioner` gives them the cached assignments."""
        uplinks = EphemeralUplinks(
            settings=settings,
            hub=self._hub,
            tls=self._tls,
            transport_factory=self.transport_factory,
            pacing=self.pacing,
        )
        self._uplinks.append(uplinks)
        return uplinks

    def provisioner(self, spec: DeviceSpec) -> Provisioner:
        return self._provisioner(spec)

    # -- sessions -----------------------------------------------------------------------------------

    def get(self, device_id: str) -> DeviceSession | None:
        return self._sessions.get(device_id)

    def in_state(self, state: SessionState) -> list[str]:
        """The ids of the devices whose session is in `state` now."""
        return [device_id for device_id, session in self._sessions.items() if session.status.state is state]

    async def session(self, spec: DeviceSpec) -> DeviceSession:
        """The device's session, created and started on first need (lazy connect)."""
        if self._closed:
            raise PoolFullError("the pool is shut down")
        existing = self._sessions.get(spec.device_id)
        if existing is not None:
            return existing
        if len(self._sessions) >= self.settings.max_sessions and not await self._evict(1):
            self.counters["pool_full"] += 1
            raise PoolFullError(f"all {self.settings.max_sessions} sessions are in use")
        session = DeviceSession(
            spec.device_id,
            spec.credential,
            provisioner=self._provisioner(spec),
            transport_factory=self.transport_factory,
            endpoint=self._hub,
            settings=self._settings_for(spec),
            callbacks=spec.callbacks,
            tls=self._tls,
            pacing=self.pacing.for_device(),
        )
        self._sessions[spec.device_id] = session
        self._specs[spec.device_id] = spec
        session.start()
        self.counters["sessions_opened"] += 1
        if self.settings.idle_timeout and self._evictor is None:
            self._evictor = asyncio.create_task(self._evict_idle(), name="session-evictor")
        return session

    def _settings_for(self, spec: DeviceSpec) -> SessionSettings:
        settings = self._session_settings
        if spec.model_id == settings.model_id:
            return settings
        return replace(settings, model_id=spec.model_id)

    def pin(self, device_id: str, pinned: bool = True) -> None:
        """A pinned device stays connected however idle (it has commands or subscriptions pending)."""
        if pinned:
            self._pinned.add(device_id)
        else:
            self._pinned.discard(device_id)

    async def close_session(self, device_id: str) -> None:
        session = self._sessions.pop(device_id, None)
        self._specs.pop(device_id, None)
        self._pinned.discard(device_id)
        if session is not None:
            if isinstance(session.credential, X509Identity):
                self._tls.forget(session.credential)
            self._absorb(session)
            await session.close()
            self.counters["sessions_closed"] += 1

    def _absorb(self, session: DeviceSession) -> None:
        """Keep a closing session's counts in the pool's totals."""
        metrics = session.metrics
        self.counters["connects"] += metrics.connects
        self.counters["published"] += metrics.published
        for kind, count in metrics.failures.items():
            self.counters[f"failure:{kind}"] += count

    def _idle(self, now: float, idle_for: float) -> list[DeviceSession]:
        return [
            session
            for device_id, session in self._sessions.items()
            if device_id not in self._pinned and not session.busy and now - session.last_activity >= idle_for
        ]

    async def _evict(self, wanted: int) -> bool:
        """Close up to `wanted` least recently used idle sessions to make room; True if any closed."""
        candidates = sorted(self._idle(time.monotonic(), 0.0), key=lambda s: s.last_activity)[:wanted]
        for session in candidates:
            self.counters["evicted"] += 1
            await self.close_session(session.device_id)
        return bool(candidates)

    async def _evict_idle(self) -> None:
        timeout = self.settings.idle_timeout
        assert timeout
        while True:
            await asyncio.sleep(max(timeout / 4, 0.05))
            for session in self._idle(time.monotonic(), timeout):
                device_log(log, session.device_id).info("pool: closing idle session")
                self.counters["evicted"] += 1
                await self.close_session(session.device_id)

    async def close(self) -> None:
        """Orderly shutdown: stop eviction, close every session, stop keep-alive."""
        self._closed = True
        if self._evictor is not None:
            self._evictor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._evictor
        sessions = list(self._sessions)
        await asyncio.gather(*(self.close_session(device_id) for device_id in sessions))
        await asyncio.gather(*(uplinks.close() for uplinks in self._uplinks))
        await self._group.close()

    # -- metrics ------------------------------------------------------------------------------------

    def metrics(self) -> dict[str, int]:
        """Sessions by state, and totals: connects, publishes, failures by kind."""
        figures: Counter[str] = Counter(self.counters)
        for state in SessionState:
            figures[f"sessions:{state.value}"] = 0
        for session in self._sessions.values():
            figures[f"sessions:{session.status.state.value}"] += 1
            figures["connects"] += session.metrics.connects
            figures["published"] += session.metrics.published
            figures["publish_retries"] += session.metrics.publish_failures
            for kind, count in session.metrics.failures.items():
                figures[f"failure:{kind}"] += count
        figures["sessions"] = len(self._sessions)
        figures["pinned"] = len(self._pinned)
        return dict(figures)

    def pacer_gauges(self) -> dict[str, dict[tuple[str, ...], float]]:
        """The pacers' progress for /metrics: who waits, how many went, the rate now, throttles seen."""
        pacers = [pacer.figures() for pacer in self.pacing.pacers()]
        return {
            "iotc_translator_pacer_waiting": {(f.name,): float(f.waiting) for f in pacers},
            "iotc_translator_pacer_granted": {(f.name,): float(f.granted) for f in pacers},
            "iotc_translator_pacer_rate": {(f.name,): f.rate for f in pacers},
            "iotc_translator_pacer_throttled": {(f.name,): float(f.throttled) for f in pacers},
        }
