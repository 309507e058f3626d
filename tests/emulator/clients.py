"""Test-side clients for the emulator: SAS tokens, TLS contexts, aiomqtt clients and a raw MQTT client.

Written independently of `emulator/sas.py` and `emulator/mqtt_codec.py` on purpose: the emulator's token
checks and packet decoding are exercised against separate code. Outgoing raw packets are built with
amqtt's packet classes (or by hand, for garbage); incoming ones are split by a small parser here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import aiomqtt
from amqtt.mqtt.connect import ConnectPacket, ConnectPayload, ConnectVariableHeader
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.pingreq import PingReqPacket
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.subscribe import SubscribePacket

from emulator.app import Emulator
from tests.conftest import RestClient

MODEL_ID = "dtmi:com:example:Thermostat;1"
DPS_API = "2019-03-31"
HUB_API = "2021-04-12"
STEP = 5.0  # seconds any single expected event may take

# MQTT control packet types (MQTT 3.1.1 §2.2.1).
CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP = 2, 3, 4, 9, 11, 13


# -- SAS ------------------------------------------------------------------------------------------------


def device_key(group_key_b64: str, registration_id: str) -> str:
    """A group enrollment's per-device key: base64(HMAC-SHA256(base64decode(groupKey), registrationId))."""
    mac = hmac.new(base64.b64decode(group_key_b64), registration_id.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def sas_token(
    resource: str, key_b64: str, *, ttl: float = 3600, expiry: int | None = None, policy: str | None = None
) -> str:
    """`SharedAccessSignature sr=...&sig=...&se=...[&skn=...]` as PROTOCOLS.md §3 describes it."""
    se = int(time.time() + ttl) if expiry is None else expiry
    encoded_resource = quote(resource, safe="")
    to_sign = f"{encoded_resource}\n{se}".encode()
    signature = base64.b64encode(hmac.new(base64.b64decode(key_b64), to_sign, hashlib.sha256).digest())
    token = f"SharedAccessSignature sr={encoded_resource}&sig={quote(signature.decode(), safe='')}&se={se}"
    if policy is not None:
        token += f"&skn={policy}"
    return token


def dps_username(id_scope: str, registration_id: str) -> str:
    return f"{id_scope}/registrations/{registration_id}/api-version={DPS_API}"


def dps_token(id_scope: str, registration_id: str, key_b64: str, *, ttl: float = 3600) -> str:
    return sas_token(f"{id_scope}/registrations/{registration_id}", key_b64, ttl=ttl, policy="registration")


def hub_username(hub: str, device_id: str, model_id: str = MODEL_ID) -> str:
    return f"{hub}/{device_id}/?api-version={HUB_API}&model-id={quote(model_id, safe='')}"


def hub_token(hub: str, device_id: str, key_b64: str, *, ttl: float = 3600) -> str:
    return sas_token(f"{hub}/devices/{device_id}", key_b64, ttl=ttl)


# -- TLS ------------------------------------------------------------------------------------------------


def client_tls(ca_path: Path | str, certificate: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """Trust the emulator's CA; optionally present a client certificate (cert file, key file)."""
    context = ssl.create_default_context(cafile=str(ca_path))
    if certificate is not None:
        context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context


def ca_path(emulator: Emulator) -> Path:
    assert emulator.tls is not None
    return emulator.tls.ca_path


def primary_key(emulator: Emulator, device_id: str) -> str:
    return device_key(emulator.application.group_primary_key, device_id)


# -- aiomqtt --------------------------------------------------------------------------------------------


def mqtt_client(
    emulator: Emulator,
    *,
    client_id: str,
    username: str,
    password: str | None,
    keepalive: int = 60,
    clean_session: bool = True,
    certificate: tuple[Path, Path] | None = None,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        emulator.mqtt_port,
        identifier=client_id,
        username=username,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=clean_session,
        keepalive=keepalive,
        tls_context=client_tls(ca_path(emulator), certificate),
        timeout=STEP,
    )


def dps_client(
    emulator: Emulator,
    registration_id: str,
    *,
    key: str | None = None,
    password: str | None = None,
    certificate: tuple[Path, Path] | None = None,
) -> aiomqtt.Client:
    """A DPS client; the password is a token signed with `key` (default: the primary derived key)."""
    scope = emulator.application.id_scope
    if password is None and certificate is None:
        password = dps_token(scope, registration_id, key or primary_key(emulator, registration_id))
    return mqtt_client(
        emulator,
        client_id=registration_id,
        username=dps_username(scope, registration_id),
        password=password,
        certificate=certificate,
    )


def hub_client(
    emulator: Emulator,
    hub: str,
    device_id: str,
    *,
    password: str | None = None,
    keepalive: int = 60,
    clean_session: bool = True,
    certificate: tuple[Path, Path] | None = None,
    model_id: str = MODEL_ID,
) -> aiomqtt.Client:
    if password is None and certificate is None:
        password = hub_token(hub, device_id, primary_key(emulator, device_id))
    return mqtt_client(
        emulator,
        client_id=device_id,
        username=hub_username(hub, device_id, model_id),
        password=password,
        keepalive=keepalive,
        clean_session=clean_session,
        certificate=certificate,
    )


@dataclass(frozen=True, slots=True)
class Response:
    """A DPS or hub response: the status from the topic, the topic's query, the JSON body (or None)."""

    status: int
    query: dict[str, str]
    body: Any
    topic: str


def parse_response(message: aiomqtt.Message) -> Response:
    topic = message.topic.value
    parts = topic.split("/")
    # $dps/registrations/res/{status}/?... and $iothub/twin/res/{status}/?...
    status = int(parts[3])
    query = dict(parse_qsl(topic.partition("?")[2], keep_blank_values=True))
    payload = message.payload
    raw = payload if isinstance(payload, bytes | bytearray) else str(payload or "").encode()
    body = json.loads(raw) if raw else None
    return Response(status, query, body, topic)


async def next_message(client: aiomqtt.Client, timeout: float = STEP) -> aiomqtt.Message:
    async with asyncio.timeout(timeout):
        return await anext(client.messages)


async def no_message(client: aiomqtt.Client, within: float) -> None:
    """Assert nothing arrives on `client` for `within` seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            message = await anext(client.messages)
            raise AssertionError(f"unexpected message on {message.topic.value}")


async def dps_request(client: aiomqtt.Client, topic: str, body: Any = None) -> Response:
    await client.publish(topic, json.dumps(body).encode() if body is not None else b"", qos=0)
    return parse_response(await next_message(client))


def register_topic(rid: int) -> str:
    return f"$dps/registrations/PUT/iotdps-register/?$rid={rid}"


def poll_topic(rid: int, operation_id: str) -> str:
    return f"$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={operation_id}"


async def register(
    client: aiomqtt.Client, registration_id: str, model_id: str = MODEL_ID, *, poll_every: float = 0.25
) -> Response:
    """Subscribe, register and poll (faster than retry-after, which DPS allows) until a final answer."""
    await client.subscribe("$dps/registrations/res/#", qos=1)
    response = await dps_request(
        client, register_topic(1), {"registrationId": registration_id, "payload": {"modelId": model_id}}
    )
    rid = 2
    async with asyncio.timeout(STEP):
        while response.status == 202:
            await asyncio.sleep(poll_every)
            response = await dps_request(client, poll_topic(rid, response.body["operationId"]))
            rid += 1
    return response


async def provision(emulator: Emulator, device_id: str, model_id: str = MODEL_ID) -> str:
    """Run DPS for `device_id` over TLS MQTT; the hub it was assigned to."""
    async with dps_client(emulator, device_id) as client:
        response = await register(client, device_id, model_id)
    assert response.status == 200, response
    hub = response.body["registrationState"]["assignedHub"]
    assert isinstance(hub, str)
    return hub


async def telemetry_after(rest: RestClient, device_id: str, after: int, wait: float = STEP) -> list[Any]:
    """Telemetry events of `device_id` with a sequence number over `after` (long-polls the log)."""
    log = await rest.get(f"/emulator/telemetry?deviceId={device_id}&after={after}&wait={wait}")
    events: list[Any] = log["value"]
    return events


async def telemetry_mark(rest: RestClient) -> int:
    log = await rest.get("/emulator/telemetry?deviceId=-none-")
    mark: int = log["next"]
    return mark


# -- raw packets (amqtt's classes) ------------------------------------------------------------------------


def connect_packet(
    client_id: str,
    username: str | None,
    password: str | None,
    *,
    keepalive: int = 60,
    clean_session: bool = True,
    protocol_level: int = 4,
) -> bytes:
    header = ConnectVariableHeader(0, keepalive, "MQTT", protocol_level)
    header.username_flag = username is not None
    header.password_flag = password is not None
    header.clean_session_flag = clean_session
    payload = ConnectPayload(client_id, username=username, password=password)
    return bytes(ConnectPacket(variable_header=header, payload=payload).to_bytes())


def subscribe_packet(filters: list[tuple[str, int]], packet_id: int) -> bytes:
    return bytes(SubscribePacket.build(filters, packet_id).to_bytes())


def publish_packet(
    topic: str, payload: bytes, *, qos: int = 0, packet_id: int | None = None, retain: bool = False
) -> bytes:
    return bytes(PublishPacket.build(topic, payload, packet_id, False, qos, retain).to_bytes())


def puback_packet(packet_id: int) -> bytes:
    return bytes(PubackPacket.build(packet_id).to_bytes())


def pingreq_packet() -> bytes:
    return bytes(PingReqPacket().to_bytes())


def disconnect_packet() -> bytes:
    return bytes(DisconnectPacket().to_bytes())


# -- raw TLS client ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawPacket:
    kind: int
    flags: int
    body: bytes

    @property
    def qos(self) -> int:
        return (self.flags >> 1) & 3

    @property
    def topic(self) -> str:
        assert self.kind == PUBLISH
        length = int.from_bytes(self.body[:2], "big")
        return self.body[2 : 2 + length].decode()

    @property
    def packet_id(self) -> int:
        if self.kind == PUBLISH:
            start = 2 + int.from_bytes(self.body[:2], "big")
            return int.from_bytes(self.body[start : start + 2], "big")
        return int.from_bytes(self.body[:2], "big")

    @property
    def payload(self) -> bytes:
        assert self.kind == PUBLISH
        start = 2 + int.from_bytes(self.body[:2], "big") + (2 if self.qos else 0)
        return self.body[start:]


class RawClient:
    """One TLS connection speaking bytes: whatever a test builds, sent as is."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls,
        emulator: Emulator,
        *,
        server_hostname: str = "localhost",
        certificate: tuple[Path, Path] | None = None,
    ) -> RawClient:
        context = client_tls(ca_path(emulator), certificate)
        async with asyncio.timeout(STEP):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", emulator.mqtt_port, ssl=context, server_hostname=server_hostname
            )
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_packet(self, timeout: float = STEP) -> RawPacket:
        """The next packet; EOFError when the server closed the connection."""
        async with asyncio.timeout(timeout):
            first = await self.reader.read(1)
            if not first:
                raise EOFError
            length, multiplier = 0, 1
            for _ in range(4):
                byte = await self.reader.readexactly(1)
                length += (byte[0] & 0x7F) * multiplier
                multiplier *= 128
                if not byte[0] & 0x80:
                    break
            body = await self.reader.readexactly(length)
        return RawPacket(first[0] >> 4, first[0] & 0xF, body)

    async def expect(self, kind: int, timeout: float = STEP) -> RawPacket:
        packet = await self.read_packet(timeout)
        assert packet.kind == kind, f"expected packet type {kind}, got {packet}"
        return packet

    async def connect(
        self,
        client_id: str,
        username: str | None,
        password: str | None,
        *,
        keepalive: int = 60,
        clean_session: bool = True,
    ) -> tuple[int, bool]:
        """Send CONNECT; the CONNACK's (return code, session present)."""
        await self.send(
            connect_packet(client_id, username, password, keepalive=keepalive, clean_session=clean_session)
        )
        connack = await self.expect(CONNACK)
        assert len(connack.body) == 2, connack
        return connack.body[1], bool(connack.body[0] & 1)

    async def subscribe(self, filters: list[tuple[str, int]], packet_id: int = 1) -> list[int]:
        await self.send(subscribe_packet(filters, packet_id))
        suback = await self.expect(SUBACK)
        assert suback.packet_id == packet_id
        return list(suback.body[2:])

    async def expect_closed(self, timeout: float = STEP) -> list[RawPacket]:
        """Read until the server closes the connection; the packets that came before (e.g. a CONNACK)."""
        packets: list[RawPacket] = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    packets.append(await self.read_packet(timeout))
                except (EOFError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return packets

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self.writer.wait_closed()


async def raw_hub(emulator: Emulator, hub: str, device_id: str, *, keepalive: int = 60) -> RawClient:
    """A raw client connected (CONNACK 0) to `hub` as `device_id` with a valid token."""
    client = await RawClient.open(emulator, server_hostname=hub)
    code, _ = await client.connect(
        device_id,
        hub_username(hub, device_id),
        hub_token(hub, device_id, primary_key(emulator, device_id)),
        keepalive=keepalive,
    )
    assert code == 0, code
    return client
