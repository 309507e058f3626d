"""One IoT Central device's MQTT session to its hub: connect, keep connected, publish, twin, methods, C2D.

The session is told how to get an assignment (`Provisioner`, usually cached DPS) and what to do with what the
cloud sends (`SessionCallbacks`); it knows nothing of CoAP. It reconnects with exponential backoff and full
jitter, renews its SAS token before expiry by reconnecting, re-provisions when the hub refuses the device (it
may have moved), and reports an honest state with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from translator.iotc.client.credentials import Credential, TlsContexts, connect_secret
from translator.iotc.client.inbound import Inbound, TwinWaiter
from translator.iotc.client.pacer import UNPACED, DevicePacing
from translator.iotc.client.session_types import (
    HubEndpoint,
    MethodHandler,
    Provisioner,
    SessionCallbacks,
    SessionClosedError,
    SessionMetrics,
    SessionSettings,
    SessionState,
    SessionStatus,
    released_by_owner,
)
from translator.iotc.client.transport import (
    AckCallback,
    ConnectParams,
    ConnectRefusedError,
    MessageHandler,
    MqttTransport,
    TransportClosedError,
)
from translator.iotc.client.twin_client import TwinClient
from translator.iotc.protocol.approval_wait import ApprovalWait
from translator.iotc.protocol.backoff import Backoff
from translator.iotc.protocol.dps import Assigned
from translator.iotc.protocol.errors import (
    MAX_MESSAGE_BYTES,
    ConnectionLostError,
    DeviceBlockedError,
    HubError,
    MessageTooLargeError,
    ProvisioningError,
)
from translator.iotc.protocol.reconnect import Ended, Ending, ReconnectPolicy
from translator.iotc.protocol.sas import IssuedToken
from translator.iotc.protocol.telemetry_topics import TelemetryTopics
from translator.iotc.protocol.topics import (
    DESIRED_PATCH_SUBSCRIPTION,
    METHODS_SUBSCRIPTION,
    TWIN_RESPONSE_SUBSCRIPTION,
    c2d_subscription,
    hub_resource_uri,
    hub_username,
)
from translator.iotc.protocol.twin import Twin
from translator.iotc.protocol.twin_requests import TwinRequests
from translator.ops.logs import device_log

# The types live in session_types.py; they are re-exported so owners import them from here.
__all__ = [
    "DeviceSession",
    "HubEndpoint",
    "MethodHandler",
    "Provisioner",
    "SessionCallbacks",
    "SessionClosedError",
    "SessionMetrics",
    "SessionSettings",
    "SessionState",
    "SessionStatus",
]

log = logging.getLogger(__name__)


class DeviceSession:
    def __init__(
        self,
        device_id: str,
        credential: Credential,
        *,
        provisioner: Provisioner,
        transport_factory: Callable[[MessageHandler], MqttTransport],
        endpoint: HubEndpoint | None = None,
        settings: SessionSettings | None = None,
        callbacks: SessionCallbacks | None = None,
        tls: TlsContexts | None = None,
        rng: random.Random | None = None,
        pacing: DevicePacing = UNPACED,
    ) -> None:
        self.device_id = device_id
        self.credential = credential
        self._provisioner = provisioner
        self._transport_factory = transport_factory
        self._endpoint = endpoint or HubEndpoint()
        self.settings = settings or SessionSettings()
        self.callbacks = callbacks or SessionCallbacks()
        self._pacing = pacing
        self._tls = tls or TlsContexts(self._endpoint.ca_file)
        draw = (rng or random.Random()).random
        self._backoff = Backoff(self.settings.backoff, draw, time.monotonic)
        self._policy = ReconnectPolicy(self._backoff, ApprovalWait(self.settings.approval, draw))
        self.metrics = SessionMetrics()
        self.status = SessionStatus(SessionState.IDLE, "not started", time.monotonic())
        self.assignment: Assigned | None = None
        self._transport: MqttTransport | None = None
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._in_flight = asyncio.Semaphore(self.settings.max_in_flight)
        self._publishing = 0
        self._drained = asyncio.Event()  # set while no publish is in flight
        self._drained.set()
        self._twin_requests: TwinRequests[TwinWaiter] = TwinRequests()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._log = device_log(log, device_id)
        self._inbound = Inbound(
            device_id,
            self.callbacks,
            self._twin_requests,
            ready=self._ready,
            spawn=self._spawn,
            method_timeout=self.settings.method_timeout,
        )
        self._runner: asyncio.Task[None] | None = None
        self._topics = TelemetryTopics(device_id)
        self.last_activity = time.monotonic()
        self._twin = TwinClient(
            device_id,
            self._twin_requests,
            ready=self._ready,
            pacing=pacing,
            policy=self._policy,
            metrics=self.metrics,
        )

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name=f"session-{self.device_id}")

    async def close(self) -> None:
        """Disconnect and stop; pending sends fail with SessionClosedError. Idempotent."""
        self._closing.set()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._drop_transport()
        self._set_state(SessionState.CLOSED, "closed by owner")

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    @property
    def busy(self) -> bool:
        """Whether work is under way: provisioning, connecting, publishes, twin requests, method calls."""
        establishing = self.status.state in (SessionState.PROVISIONING, SessionState.CONNECTING)
        return establishing or bool(self._publishing or self._twin_requests or self._tasks)

    async def wait_connected(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._ready()

    def _set_state(self, state: SessionState, reason: str) -> None:
        if self.status.state is SessionState.CLOSED:
            return
        self.status = SessionStatus(state, reason, time.monotonic())
        level = logging.WARNING if state is SessionState.WAITING_APPROVAL else logging.INFO
        self._log.log(level, "session %s (%s)", state.value, reason)
        if self.callbacks.on_state is not None:
            self.callbacks.on_state(self, self.status)

    async def _run(self) -> None:
        """The I/O of the loop `ReconnectPolicy` decides: assignment → connect → hold → ended → wait."""
        while not self._closing.is_set():
            ended = await self._attempt()
            if self._closing.is_set():
                return
            retry = self._policy.ended(ended)
            if not retry.disconnect:
                continue
            self.metrics.disconnects += 1
            state = SessionState.WAITING_APPROVAL if retry.not_approved else SessionState.BACKING_OFF
            self._set_state(state, f"{retry.reason}; retrying in {retry.delay:.1f} s")
            await asyncio.sleep(retry.delay)
            released = await released_by_owner(self.callbacks, self.device_id)
            if released is not None:
                self._closing.set()  # waiting and later sends fail with SessionClosedError
                self._set_state(SessionState.CLOSED, released)
                return

    async def _attempt(self) -> Ended:
        """One assignment → connection → hold, and how it ended. Only cancellation escapes."""
        try:
            reprovision = self._policy.reprovision
            self._set_state(SessionState.PROVISIONING, "reprovisioning" if reprovision else "assignment")
            self.assignment = await self._provisioner(reprovision)
            self._policy.assigned()
            self.metrics.provisions += int(reprovision)
            await self._pacing.connect()
            self._set_state(SessionState.CONNECTING, f"to {self.assignment.assigned_hub}")
            token = await self._connect(self.assignment)
            if await self._hold(token):
                return Ended(Ending.RENEWAL, "token renewal")
            return Ended(Ending.LOST, "connection lost")
        except ConnectRefusedError as error:
            self.metrics.failed("refused")
            self._pacing.connect_refused(error.return_code)
            return Ended(Ending.REFUSED, str(error), error.return_code)
        except DeviceBlockedError as error:
            self.metrics.failed("not_approved")
            return Ended(
                Ending.NOT_APPROVED, f"IoT Central refuses the device until approved or unblocked: {error}"
            )
        except ProvisioningError as error:
            self.metrics.failed(type(error).__name__)
            return Ended(Ending.PROVISIONING, f"provisioning failed: {error}")
        except (OSError, ssl.SSLError, TimeoutError, TransportClosedError) as error:
            self.metrics.failed("connection")
            return Ended(Ending.CONNECTION, f"{type(error).__name__}: {error}")
        except Exception as error:
            # A failure nobody foresaw (a provisioner's store, a callback) must not end the device's
            # session for good: it is logged with its traceback and retried like any other.
            self._log.exception("session: unexpected failure")
            self.metrics.failed("unexpected")
            return Ended(Ending.UNEXPECTED, f"{type(error).__name__}: {error}")
        finally:
            self._connected.clear()
            await self._drop_transport()

    async def _connect(self, assignment: Assigned) -> IssuedToken | None:
        hub, device_id = assignment.assigned_hub, assignment.device_id
        secret = connect_secret(
            self.credential, hub_resource_uri(hub, device_id), time.time(), policy=self.settings.token_policy
        )
        transport = self._transport_factory(self._on_message)
        self._transport = transport
        params = ConnectParams(
            host=self._endpoint.gateway_host or hub,
            port=self._endpoint.port,
            client_id=device_id,
            username=hub_username(hub, device_id, self.settings.model_id),
            password=secret.password,
            ssl_context=self._tls.for_identity(secret.identity),
            server_hostname=hub,
            keep_alive=self.settings.keep_alive,
            clean_session=False,
            connect_timeout=self.settings.connect_timeout,
        )
        await transport.connect(params)
        filters = [
            TWIN_RESPONSE_SUBSCRIPTION,
            DESIRED_PATCH_SUBSCRIPTION,
            METHODS_SUBSCRIPTION,
            c2d_subscription(device_id),
        ]
        async with asyncio.timeout(self.settings.connect_timeout):
            granted = await transport.subscribe(filters)
        refused = [topic for topic, code in zip(filters, granted, strict=False) if code == 0x80]
        if refused:
            raise TransportClosedError(f"hub refused subscriptions {refused}")
        self.metrics.connects += 1
        self._policy.connected()
        self._connected.set()
        self._set_state(SessionState.CONNECTED, f"to {hub}")
        if self.callbacks.on_connected is not None:
            self._spawn(self._after_connect(self.callbacks.on_connected), "after-connect")
        return secret.token

    async def _after_connect(self, callback: Callable[[DeviceSession], Awaitable[None]]) -> None:
        try:
            await callback(self)
        except (HubError, TimeoutError) as error:
            self._log.warning("session: after-connect work failed: %s", error)

    async def _hold(self, token: IssuedToken | None) -> bool:
        """Wait while connected: True when the token is due for renewal, False when the connection ends."""
        transport = self._transport
        assert transport is not None
        lost = asyncio.ensure_future(transport.closed)
        closing = asyncio.ensure_future(self._closing.wait())
        waits: set[asyncio.Future[Any]] = {lost, closing}
        try:
            timeout = token.seconds_until_renewal(time.time()) if token is not None else None
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        if lost in done:
            self._set_state(SessionState.CONNECTING, f"connection lost: {lost.result()}")
            return False
        lost.cancel()
        if closing in done:
            return False
        # Renewal: stop taking new publishes, let the ones in flight get their PUBACK, then reconnect.
        self._connected.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), self.settings.drain_timeout)
        self._log.info("session: renewing SAS token")
        return True

    async def _drop_transport(self) -> None:
        transport, self._transport = self._transport, None
        for waiter in self._twin_requests.abandon_all():
            if not waiter.done():
                waiter.set_exception(ConnectionLostError("connection lost before the twin response"))
                waiter.exception()
        if transport is not None:
            await transport.close()

    def _spawn(self, coroutine: Awaitable[Any], what: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(f"session-{self.device_id}-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ready(self) -> MqttTransport:
        while True:
            if self._closing.is_set():
                raise SessionClosedError(f"session {self.device_id} is closed")
            transport = self._transport
            if self._connected.is_set() and transport is not None:
                if transport.is_connected:
                    return transport
                # Lost under us: wait for `_run` to notice and reconnect instead of spinning on a dead one.
                self._connected.clear()
            waiter = asyncio.ensure_future(self._connected.wait())
            closing = asyncio.ensure_future(self._closing.wait())
            try:
                await asyncio.wait({waiter, closing}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                closing.cancel()

    # -- device → cloud ---------------------------------------------------------------------------

    async def send_telemetry(
        self,
        payload: bytes,
        *,
        component: str | None = None,
        creation_time: datetime | None = None,
        custom: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Publish with QoS 1; return only once the hub acknowledged it. Retries across reconnects until
        `timeout`; raises TimeoutError, SessionClosedError or MessageTooLargeError."""
        topic = self._topics.topic(component, creation_time, custom)
        if len(payload) + len(topic) > MAX_MESSAGE_BYTES:
            raise MessageTooLargeError(len(payload) + len(topic))
        self.last_activity = time.monotonic()
        async with asyncio.timeout(timeout), self._in_flight:
            self._publishing += 1
            self._drained.clear()
            try:
                await self._pacing.telemetry()  # over the rate a message waits here, within its timeout
                while True:
                    transport = await self._ready()
                    try:
                        await transport.publish(topic, payload, 1)
                    except TransportClosedError:
                        self.metrics.publish_failures += 1
                        continue  # at least once: the same message goes again on the next connection
                    self.metrics.published += 1
                    self._policy.proven()
                    return
            finally:
                self._publishing -= 1
                if not self._publishing:
                    self._drained.set()

    def telemetry_wait(self) -> float:
        """Seconds a telemetry message sent now would wait for the pacers (0: none)."""
        return self._pacing.telemetry_wait()

    def publish_telemetry_nowait(
        self,
        payload: bytes,
        on_ack: AckCallback,
        *,
        component: str | None = None,
        creation_time: datetime | None = None,
    ) -> bool:
        """Publish with QoS 1 right now, without a coroutine, if connected and under the in-flight bound;
        False otherwise (use send_telemetry then). `on_ack` gets None on the PUBACK, or the error that lost
        the publish. Unlike send_telemetry nothing is retried and no time limit applies: the caller bounds
        the wait (the bridge's sweep) and retries through send_telemetry."""
        transport = self._transport
        if (
            transport is None
            or not self._connected.is_set()
            or self._closing.is_set()
            or self._publishing >= self.settings.max_in_flight
        ):
            return False
        topic = self._topics.topic(component, creation_time)
        if len(payload) + len(topic) > MAX_MESSAGE_BYTES:
            return False  # send_telemetry says why
        if not self._pacing.telemetry_now():
            return False  # over the rate: send_telemetry waits for its turn
        if not transport.publish_nowait(topic, payload, functools.partial(self._acked, on_ack)):
            return False
        self.last_activity = time.monotonic()
        self._publishing += 1
        self._drained.clear()
        return True

    def _acked(self, on_ack: AckCallback, outcome: BaseException | None) -> None:
        self._publishing -= 1
        if not self._publishing:
            self._drained.set()
        if outcome is None:
            self.metrics.published += 1
            self._policy.proven()
        else:
            self.metrics.publish_failures += 1
        on_ack(outcome)

    async def get_twin(self, timeout: float = 30.0) -> Twin:
        self.last_activity = time.monotonic()
        return await self._twin.get(timeout)

    async def patch_reported(self, patch: Mapping[str, Any], timeout: float = 30.0) -> int | None:
        """Apply a reported-properties patch; return the twin's new reported `$version`, or None when nothing
        was sent. What IoT Hub would reject for size is not sent: a property over 4 KB is left out, a patch
        that would take the section over 32 KB is refused whole, each with a logged reason."""
        self.last_activity = time.monotonic()
        return await self._twin.patch_reported(patch, timeout)

    def _on_message(self, topic: str, payload: bytes) -> None:
        if self._inbound.on_message(topic, payload):
            self.last_activity = time.monotonic()
