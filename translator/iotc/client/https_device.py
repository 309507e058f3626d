"""IoT Hub's HTTPS device API for ephemeral devices: one request per device-to-cloud message, no session.

`POST https://{hub}/devices/{id}/messages/events?api-version=2020-03-13`, 204 No Content when the hub has the
message (https://learn.microsoft.com/rest/api/iothub/device/send-device-event). What an MQTT publish puts in
its topic's property bag travels as headers (`event_request`, pure): application properties as
`iothub-app-{name}` — `iothub-creation-time-utc` is one, as in the MQTT bag — the system properties
`$.ct`/`$.ce` as `iothub-contenttype`/`iothub-contentencoding` and the component (`$.sub`, which IoT Central
files the telemetry under) as `dt-subject`
(https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-messages-construct). Authorization is the same
SAS token the MQTT CONNECT presents as its password (resource `{hub}/devices/{id}`), or the device's X.509
certificate in TLS.

`HttpsLink` is the thin shell. IoT Hub authenticates each HTTPS request by its own token, so devices that
sign with SAS keys share kept-alive TLS connections to the hub (`HttpsClients`), as Microsoft's C SDK's HTTP
transport carries several devices over one TLS connection (Azure/azure-iot-sdk-c,
iothub_client/devdoc/requirement_docs/iothubhttptransport_requirements.md): a device waking every few
minutes then costs a request, not a TLS handshake, and holds nothing between batches. A device with an X.509
certificate presents it in TLS, so its link has a connection of its own, closed with the link.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import aiohttp

from translator.iotc.client.credentials import Credential, TlsContexts, X509Identity, connect_secret
from translator.iotc.protocol.dps import Assigned
from translator.iotc.protocol.errors import (
    MAX_MESSAGE_BYTES,
    HubError,
    MessageTooLargeError,
    hub_error_for_status,
)
from translator.iotc.protocol.property_bag import CREATION_TIME, format_creation_time
from translator.iotc.protocol.sas import TokenPolicy
from translator.iotc.protocol.topics import hub_resource_uri

API_VERSION = "2020-03-13"
APP_PREFIX = "iothub-app-"


@dataclass(frozen=True, slots=True)
class EventRequest:
    path: str  # with its query
    headers: dict[str, str]


def event_request(
    device_id: str,
    *,
    component: str | None = None,
    creation_time: datetime | None = None,
    custom: Mapping[str, str] | None = None,
    content_type: str = "application/json",
    content_encoding: str = "utf-8",
) -> EventRequest:
    """The path and headers of one telemetry message (without Authorization and Host)."""
    headers = {
        "Content-Type": content_type,
        "iothub-contenttype": content_type,
        "iothub-contentencoding": content_encoding,
    }
    if component is not None:
        headers["dt-subject"] = component
    for name, value in (custom or {}).items():
        headers[APP_PREFIX + name] = value
    if creation_time is not None:
        headers[APP_PREFIX + CREATION_TIME] = format_creation_time(creation_time)
    return EventRequest(
        f"/devices/{quote(device_id, safe='')}/messages/events?api-version={API_VERSION}", headers
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def answer_error(status: int, headers: Mapping[str, str]) -> HubError | None:
    """None for the hub's 2xx, else the error a non-2xx answer means (401/404: provision again; 429:
    throttled)."""
    if 200 <= status < 300:
        return None
    return hub_error_for_status(status, retry_after=retry_after(headers), what="HTTPS send event")


class HttpsClients:
    """aiohttp client sessions to the hubs: one shared by every SAS-signing device (a pool of kept-alive
    connections), and one per X.509 link."""

    def __init__(self, tls: TlsContexts, *, timeout: float, connections: int = 16, keepalive: float = 30.0):
        self._tls = tls
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._keepalive = keepalive
        self._shared: aiohttp.ClientSession | None = None

    def client(self, identity: X509Identity | None) -> tuple[aiohttp.ClientSession, bool]:
        """(the session, whether the caller owns it and must close it)."""
        if identity is not None:
            connector = aiohttp.TCPConnector(limit=1, ssl=self._tls.for_identity(identity))
            return aiohttp.ClientSession(connector=connector, timeout=self._timeout), True
        if self._shared is None or self._shared.closed:
            connector = aiohttp.TCPConnector(
                limit=self._connections, ssl=self._tls.for_identity(None), keepalive_timeout=self._keepalive
            )
            self._shared = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._shared, False

    async def close(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.close()


class HttpsLink:
    """One batch's way to the hub over HTTPS."""

    def __init__(
        self,
        assignment: Assigned,
        credential: Credential,
        *,
        clients: HttpsClients,
        gateway_host: str | None,
        port: int,
        token_policy: TokenPolicy,
    ) -> None:
        self._hub = assignment.assigned_hub
        self._device_id = assignment.device_id
        secret = connect_secret(
            credential, hub_resource_uri(self._hub, self._device_id), time.time(), policy=token_policy
        )
        self._authorization = secret.password
        host = gateway_host or self._hub
        self._base = f"https://{host}:{port}"
        self._host_header = self._hub if port == 443 else f"{self._hub}:{port}"
        self._client, self._owned = clients.client(secret.identity)

    async def send(
        self,
        payload: bytes,
        *,
        component: str | None = None,
        creation_time: datetime | None = None,
        custom: Mapping[str, str] | None = None,
    ) -> None:
        """Returns once the hub answered 204; raises HubError (or OSError/TimeoutError) otherwise."""
        request = event_request(
            self._device_id, component=component, creation_time=creation_time, custom=custom
        )
        size = len(payload) + sum(len(k) + len(v) for k, v in request.headers.items())
        if size > MAX_MESSAGE_BYTES:
            raise MessageTooLargeError(size)
        headers = dict(request.headers)
        headers["Host"] = self._host_header  # the hub's name, wherever the connection goes (gateway_host)
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        try:
            async with self._client.post(
                self._base + request.path, data=payload, headers=headers, server_hostname=self._hub
            ) as response:
                await response.read()
                error = answer_error(response.status, response.headers)
        except aiohttp.ClientError as failure:
            raise OSError(f"HTTPS send event: {failure}") from failure
        if error is not None:
            raise error

    async def close(self) -> None:
        if self._owned:
            await self._client.close()
