"""Provision a device through DPS over MQTT: the asyncio shell around `dps.DpsRegistration`."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from translator.iotc.client.credentials import Credential, client_ssl_context, connect_secret
from translator.iotc.client.transport import ConnectParams, ConnectRefusedError, MessageHandler, MqttTransport
from translator.iotc.protocol.backoff import Backoff, BackoffPolicy
from translator.iotc.protocol.dps import Assigned, DpsRegistration, Wait
from translator.iotc.protocol.errors import (
    ProvisioningError,
    ProvisioningProtocolError,
    ProvisioningThrottledError,
    ProvisioningUnauthorizedError,
)
from translator.iotc.protocol.sas import DPS_KEY_NAME
from translator.iotc.protocol.topics import DPS_GLOBAL_HOST, dps_resource_uri, dps_username
from translator.ops.logs import DeviceLog, device_log

log = logging.getLogger(__name__)

REGISTER_PREFIX = "$dps/registrations/PUT/"


@dataclass(frozen=True, slots=True)
class DpsEndpoint:
    id_scope: str
    host: str = DPS_GLOBAL_HOST  # where to connect
    port: int = 8883
    server_hostname: str | None = None  # TLS name to verify; defaults to `host`
    ca_file: Path | None = None  # the CA to trust (the emulator's); None: the system's CAs

    @property
    def tls_name(self) -> str:
        return self.server_hostname or self.host


def _queueing(messages: asyncio.Queue[tuple[str, bytes]], dlog: DeviceLog) -> MessageHandler:
    def on_message(topic: str, payload: bytes) -> None:
        if messages.full():
            dlog.warning("dps: dropping unexpected message on %s", topic)
            return
        messages.put_nowait((topic, payload))

    return on_message


async def provision(
    endpoint: DpsEndpoint,
    registration_id: str,
    credential: Credential,
    *,
    transport_factory: Callable[[MessageHandler], MqttTransport],
    model_id: str | None = None,
    gateway_id: str | None = None,
    timeout: float = 120.0,
    backoff_policy: BackoffPolicy | None = None,
    rng: random.Random | None = None,
    registration_gate: Callable[[], Awaitable[None]] | None = None,
    on_throttled: Callable[[float | None], None] | None = None,
) -> Assigned:
    """Register `registration_id` (downstream of `gateway_id`, if given) and return its assignment, or raise a
    `ProvisioningError`.

    `registration_gate` is awaited before every registration request (not before polls: DPS counts
    registrations against its per-minute quota); `on_throttled` hears every 429 with its retry-after."""
    messages: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=64)
    dlog = device_log(log, registration_id)
    backoff = Backoff(backoff_policy or BackoffPolicy(), (rng or random.Random()).random, time.monotonic)
    registration = DpsRegistration(registration_id, backoff=backoff, model_id=model_id, gateway_id=gateway_id)
    last_wait: Wait | None = None
    if registration_gate is not None:
        # The first turn is waited for before connecting and outside the time limit: a cold fleet queues
        # here for as long as the quota needs, without holding DPS connections open (or aging a token).
        await registration_gate()
    params = _connect_params(endpoint, registration_id, credential)
    transport = transport_factory(_queueing(messages, dlog))
    try:
        async with asyncio.timeout(timeout):
            try:
                await transport.connect(params)
            except ConnectRefusedError as error:
                raise ProvisioningUnauthorizedError(f"DPS refused the connection: {error}") from error
            await transport.subscribe([registration.subscription])
            publish = registration.start()
            dlog.info("dps: registering (model %s)", model_id)
            first = True
            while True:
                # Registrations count against DPS's quota; polls (once DPS gave an operation id) do not.
                if registration_gate is not None and not first and publish.topic.startswith(REGISTER_PREFIX):
                    await registration_gate()
                first = False
                await transport.publish(publish.topic, publish.payload, qos=1)
                event: Wait | Assigned | None = None
                while event is None:
                    topic, payload = await messages.get()
                    event = registration.receive(topic, payload)
                if isinstance(event, Assigned):
                    dlog.info("dps: assigned to %s as %s", event.assigned_hub, event.device_id)
                    return event
                last_wait = event
                if event.reason == "throttled" and on_throttled is not None:
                    on_throttled(event.delay)
                dlog.info("dps: %s, next request in %.1f s", event.reason, event.delay)
                await asyncio.sleep(event.delay)
                publish = registration.next_publish()
    except TimeoutError:
        if last_wait is not None and last_wait.reason == "throttled":
            raise ProvisioningThrottledError(
                f"DPS kept throttling for {timeout:.0f} s", retry_after=last_wait.delay
            ) from None
        raise ProvisioningProtocolError(f"DPS gave no assignment within {timeout:.0f} s") from None
    except ProvisioningError:
        raise
    finally:
        await transport.close()


def _connect_params(endpoint: DpsEndpoint, registration_id: str, credential: Credential) -> ConnectParams:
    secret = connect_secret(
        credential, dps_resource_uri(endpoint.id_scope, registration_id), time.time(), key_name=DPS_KEY_NAME
    )
    context: ssl.SSLContext = client_ssl_context(endpoint.ca_file, secret.identity)
    return ConnectParams(
        host=endpoint.host,
        port=endpoint.port,
        client_id=registration_id,
        username=dps_username(endpoint.id_scope, registration_id),
        password=secret.password,
        ssl_context=context,
        server_hostname=endpoint.tls_name,
        keep_alive=60,
        clean_session=True,
    )
