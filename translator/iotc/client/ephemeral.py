"""An ephemeral device's uplink: telemetry without a held session.

IoT Central's device guide puts sleepy, telemetry-only devices on ephemeral connections: connect, send,
disconnect — "not for command and control"
(https://learn.microsoft.com/azure/iot-central/core/overview-iot-central-developer). `EphemeralSession` stands
where a `DeviceSession` stands for the device's telemetry delivery (`bridge.delivery`): `send_telemetry`
returns once the hub has the message. Each batch opens a link with the cached DPS assignment — IoT Hub's
HTTPS device API (`https_device.HttpsLink`: requests over the hub's kept-alive connections, shared by
every SAS-signing device) or a short clean MQTT connection (`short_mqtt.ShortMqttLink`) — and the link
closes once nothing was sent for `linger` seconds, so a batch and its outbox replay share one link and no
session of the device stays open between batches.

A failed send, or one cut by its bound, raises (the delivery keeps the message in its outbox) and starts a
backoff window with full jitter, during which the session reports itself down (`is_connected` false: new
telemetry goes straight to the outbox); at its end `on_ready` tells the delivery, which replays. A 401/404
from the hub runs DPS again on the next attempt (IoT Central may have moved the device).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from translator.iotc.client.credentials import Credential, TlsContexts
from translator.iotc.client.https_device import HttpsClients, HttpsLink
from translator.iotc.client.pacer import UNPACED, DevicePacing, FleetPacing
from translator.iotc.client.session_types import (
    HubEndpoint,
    Provisioner,
    SessionClosedError,
    SessionMetrics,
    SessionState,
    SessionStatus,
)
from translator.iotc.client.short_mqtt import ShortMqttLink
from translator.iotc.client.transport import MessageHandler, MqttTransport
from translator.iotc.protocol.approval_wait import ApprovalPolicy, ApprovalWait
from translator.iotc.protocol.backoff import Backoff, BackoffPolicy
from translator.iotc.protocol.dps import Assigned
from translator.iotc.protocol.errors import DeviceBlockedError, HubError, HubThrottledError, IotcError
from translator.iotc.protocol.sas import TokenPolicy
from translator.ops.logs import device_log

log = logging.getLogger(__name__)

Transport = Literal["https", "mqtt"]


class Link(Protocol):
    async def send(
        self,
        payload: bytes,
        *,
        component: str | None = None,
        creation_time: datetime | None = None,
        custom: Mapping[str, str] | None = None,
    ) -> None: ...

    async def close(self) -> None: ...


LinkFactory = Callable[[Assigned, Credential], Link]


class EphemeralUnavailableError(HubError):
    """An ephemeral device has no twin and takes no command: what needs a session is refused."""


@dataclass(frozen=True, slots=True)
class EphemeralSettings:
    transport: Transport = "https"
    https_port: int = 443
    linger: float = 0.2  # seconds a link stays open after its last send (the rest of the batch, a replay)
    timeout: float = 30.0  # one connect or request
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)  # waits while not approved or blocked
    token_policy: TokenPolicy = field(default_factory=TokenPolicy)


class EphemeralSession:
    def __init__(
        self,
        device_id: str,
        credential: Credential,
        *,
        provisioner: Provisioner,
        open_link: LinkFactory,
        settings: EphemeralSettings | None = None,
        pacing: DevicePacing = UNPACED,
        rng: random.Random | None = None,
    ) -> None:
        self.device_id = device_id
        self.credential = credential
        self.settings = settings or EphemeralSettings()
        self.on_ready: Callable[[], None] | None = None  # the delivery's "session up": replay
        self.metrics = SessionMetrics()
        self.status = SessionStatus(SessionState.IDLE, "ephemeral: no session held", time.monotonic())
        self.last_activity = time.monotonic()
        self._provisioner = provisioner
        self._open_link = open_link
        self._pacing = pacing
        draw = (rng or random.Random()).random
        self._backoff = Backoff(self.settings.backoff, draw, time.monotonic)
        self._approval = ApprovalWait(self.settings.approval, draw)
        self._lock = asyncio.Lock()
        self._link: Link | None = None
        self._reprovision = False
        self._down: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._warned_reported = False

    # -- what the delivery asks ---------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Up unless closed or in a backoff window after a failed send."""
        return not self._closed and self._down is None

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def link_open(self) -> bool:
        return self._link is not None

    def publish_telemetry_nowait(self, payload: bytes, on_ack: Any, **_: Any) -> bool:
        return False  # each send may have to connect first: always through send_telemetry

    def telemetry_wait(self) -> float:
        """Seconds a message sent now would wait for the fleet's and the device's telemetry pacers."""
        return self._pacing.telemetry_wait()

    async def send_telemetry(
        self,
        payload: bytes,
        *,
        component: str | None = None,
        creation_time: datetime | None = None,
        custom: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Return once the hub has the message; raise HubError/TimeoutError (and back off) otherwise."""
        if self._closed:
            raise SessionClosedError(f"session {self.device_id} is closed")
        self.last_activity = time.monotonic()
        bound = asyncio.timeout(timeout)
        try:
            await self._send_within(
                bound, payload, component=component, creation_time=creation_time, custom=custom
            )
        except TimeoutError as error:
            if bound.expired() and not self._closed:
                # Cut by its bound (a DPS wait, a hub holding its answer): a failure like any other, so the
                # session is down for a backoff and the delivery keeps new data in the outbox meanwhile
                # instead of waiting the whole bound for each message; `on_ready` ends it.
                self._back_off(error)
            raise
        self.metrics.published += 1
        self._backoff.proven()
        self._approval.reset()
        self._linger = asyncio.get_running_loop().call_later(self.settings.linger, self._linger_over)

    async def _send_within(
        self,
        bound: asyncio.Timeout,
        payload: bytes,
        *,
        component: str | None,
        creation_time: datetime | None,
        custom: Mapping[str, str] | None,
    ) -> None:
        async with bound, self._lock:
            self._cancel_linger()
            await self._pacing.telemetry()  # the hub's send rates hold for ephemeral devices too
            try:
                link = await self._link_now()
                await link.send(payload, component=component, creation_time=creation_time, custom=custom)
            except (HubError, OSError, TimeoutError, IotcError) as error:
                await self._failed(error)
                if isinstance(error, HubError | TimeoutError):
                    raise
                raise HubError(f"ephemeral send: {type(error).__name__}: {error}") from error
            except asyncio.CancelledError:
                await self._drop_link()  # a request cut in the middle: that connection is not reused
                raise

    async def patch_reported(self, patch: Mapping[str, Any], timeout: float = 30.0) -> int | None:
        """Reported properties need a twin, which IoT Hub serves over MQTT/AMQP sessions only: an ephemeral
        device's properties are not sent (README: ephemeral devices). Logged once per device."""
        if not self._warned_reported:
            self._warned_reported = True
            device_log(log, self.device_id).warning(
                "ephemeral, so its reported properties are not sent (%s)", ", ".join(sorted(patch))
            )
        return None

    async def get_twin(self, timeout: float = 30.0) -> Any:
        raise EphemeralUnavailableError(f"{self.device_id}: an ephemeral device has no twin")

    async def close(self) -> None:
        self._closed = True
        self._cancel_linger()
        if self._down is not None:
            self._down.cancel()
            self._down = None
        async with self._lock:
            await self._drop_link()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        self.status = SessionStatus(SessionState.CLOSED, "closed by owner", time.monotonic())

    # -- links and failures -----------------------------------------------------------------------

    async def _link_now(self) -> Link:
        if self._link is not None:
            return self._link
        reprovision, self._reprovision = self._reprovision, False
        assignment = await self._provisioner(reprovision)
        if self.settings.transport == "mqtt":
            await self._pacing.connect()  # a CONNECT counts against the hub's new-connection throttle
        self._link = self._open_link(assignment, self.credential)
        self.metrics.connects += 1
        return self._link

    async def _failed(self, error: BaseException) -> None:
        if isinstance(error, HubError) and error.reprovision:
            self._reprovision = True
        await self._drop_link()
        self._back_off(error)

    def _back_off(self, error: BaseException) -> None:
        self.metrics.publish_failures += 1
        self.metrics.failed(type(error).__name__)
        state = SessionState.BACKING_OFF
        if isinstance(error, DeviceBlockedError):
            # Waiting for approval or blocked: a person ends it, so DPS is asked again only after the long
            # waits a held session takes too (iotc/protocol/approval_wait.py), not the send backoff.
            state, delay = SessionState.WAITING_APPROVAL, self._approval.next_delay()
        else:
            at_least = error.retry_after or 0.0 if isinstance(error, HubThrottledError) else 0.0
            delay = self._backoff.next_delay(at_least)
        device_log(log, self.device_id).info("ephemeral send failed (%s): again in %.1f s", error, delay)
        self.status = SessionStatus(state, f"{error}; again in {delay:.1f} s", time.monotonic())
        if self._down is not None:
            self._down.cancel()
        self._down = asyncio.get_running_loop().call_later(delay, self._back_up)

    def _back_up(self) -> None:
        self._down = None
        self.status = SessionStatus(SessionState.IDLE, "ephemeral: no session held", time.monotonic())
        if self.on_ready is not None and not self._closed:
            self.on_ready()

    def _cancel_linger(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _linger_over(self) -> None:
        self._linger = None
        if self._lock.locked() or self._link is None:
            return  # a send is under way: it sets the next linger
        task = asyncio.ensure_future(self._close_idle())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_idle(self) -> None:
        async with self._lock:
            if self._linger is None:  # no send came meanwhile
                await self._drop_link()

    async def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            with contextlib.suppress(Exception):  # a link that failed may fail to close too
                await link.close()


class EphemeralUplinks:
    """Builds ephemeral sessions from what the session pool shares: TLS contexts, the MQTT transport and the
    fleet's pacers (telemetry rates; an MQTT link's CONNECT counts against IoT Hub's connection throttle)."""

    def __init__(
        self,
        *,
        settings: EphemeralSettings,
        hub: HubEndpoint,
        tls: TlsContexts,
        transport_factory: Callable[[MessageHandler], MqttTransport],
        pacing: FleetPacing | None = None,
    ) -> None:
        self.settings = settings
        self._hub = hub
        self._tls = tls
        self._transport_factory = transport_factory
        self._pacing = pacing
        self._https = HttpsClients(tls, timeout=settings.timeout)

    async def close(self) -> None:
        """The shared HTTPS connections (the pool closes its uplinks at shutdown)."""
        await self._https.close()

    def session(
        self, device_id: str, credential: Credential, provisioner: Provisioner, model_id: str | None
    ) -> EphemeralSession:
        settings = self.settings

        def open_link(assignment: Assigned, credential: Credential) -> Link:
            if settings.transport == "https":
                return HttpsLink(
                    assignment,
                    credential,
                    clients=self._https,
                    gateway_host=self._hub.gateway_host,
                    port=settings.https_port,
                    token_policy=settings.token_policy,
                )
            return ShortMqttLink(
                assignment,
                credential,
                transport_factory=self._transport_factory,
                tls=self._tls,
                endpoint=self._hub,
                token_policy=settings.token_policy,
                model_id=model_id,
                timeout=settings.timeout,
            )

        return EphemeralSession(
            device_id,
            credential,
            provisioner=provisioner,
            open_link=open_link,
            settings=settings,
            pacing=self._pacing.for_device() if self._pacing is not None else UNPACED,
        )
