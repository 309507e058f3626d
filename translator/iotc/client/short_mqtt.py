"""A short MQTT connection for an ephemeral device: connect with the cached assignment, publish its batch at
QoS 1 (each returns on the hub's PUBACK, https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub),
disconnect. Clean session and no SUBSCRIBE: such a device takes no command, desired property or
cloud-to-device message, so nothing is left at the hub for it between batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime

from translator.iotc.client.credentials import Credential, TlsContexts, connect_secret
from translator.iotc.client.session_types import HubEndpoint
from translator.iotc.client.transport import ConnectParams, MessageHandler, MqttTransport
from translator.iotc.protocol.dps import Assigned
from translator.iotc.protocol.errors import MAX_MESSAGE_BYTES, MessageTooLargeError
from translator.iotc.protocol.sas import TokenPolicy
from translator.iotc.protocol.telemetry_topics import TelemetryTopics
from translator.iotc.protocol.topics import hub_resource_uri, hub_username


def _ignore(topic: str, payload: bytes) -> None:
    """Nothing is subscribed, so nothing arrives."""


class ShortMqttLink:
    def __init__(
        self,
        assignment: Assigned,
        credential: Credential,
        *,
        transport_factory: Callable[[MessageHandler], MqttTransport],
        tls: TlsContexts,
        endpoint: HubEndpoint,
        token_policy: TokenPolicy,
        model_id: str | None,
        timeout: float,
    ) -> None:
        self._assignment = assignment
        self._credential = credential
        self._factory = transport_factory
        self._tls = tls
        self._endpoint = endpoint
        self._policy = token_policy
        self._model_id = model_id
        self._timeout = timeout
        self._topics = TelemetryTopics(assignment.device_id)
        self._transport: MqttTransport | None = None

    async def _connected(self) -> MqttTransport:
        transport = self._transport
        if transport is not None and transport.is_connected:
            return transport
        hub, device_id = self._assignment.assigned_hub, self._assignment.device_id
        secret = connect_secret(
            self._credential, hub_resource_uri(hub, device_id), time.time(), policy=self._policy
        )
        transport = self._factory(_ignore)
        self._transport = transport
        await transport.connect(
            ConnectParams(
                host=self._endpoint.gateway_host or hub,
                port=self._endpoint.port,
                client_id=device_id,
                username=hub_username(hub, device_id, self._model_id),
                password=secret.password,
                ssl_context=self._tls.for_identity(secret.identity),
                server_hostname=hub,
                clean_session=True,
                connect_timeout=self._timeout,
            )
        )
        return transport

    async def send(
        self,
        payload: bytes,
        *,
        component: str | None = None,
        creation_time: datetime | None = None,
        custom: Mapping[str, str] | None = None,
    ) -> None:
        topic = self._topics.topic(component, creation_time, custom)
        if len(payload) + len(topic) > MAX_MESSAGE_BYTES:
            raise MessageTooLargeError(len(payload) + len(topic))
        transport = await self._connected()
        await transport.publish(topic, payload, 1)

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()
