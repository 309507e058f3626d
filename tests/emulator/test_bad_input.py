"""Bad input over raw TLS: each offence closes that one connection, is logged, and nobody else notices."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aiomqtt
import pytest

from emulator.app import Emulator
from tests.conftest import RestClient, emulator_config, rest_client
from tests.emulator.clients import (
    CONNACK,
    RawClient,
    connect_packet,
    dps_token,
    dps_username,
    hub_client,
    primary_key,
    provision,
    publish_packet,
    raw_hub,
    subscribe_packet,
    telemetry_after,
    telemetry_mark,
)

CONNECT_TIMEOUT = 1.0
OFFENDER = "bad-input-dev"
BYSTANDER = "bystander-dev"


@dataclass
class World:
    emulator: Emulator
    rest: RestClient
    offender_hub: str
    bystander: aiomqtt.Client


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    config = emulator_config(tmp_path / "emulator", connect_timeout=CONNECT_TIMEOUT)
    async with Emulator(config) as emulator, aiohttp.ClientSession() as session:
        offender_hub, bystander_hub = await asyncio.gather(
            provision(emulator, OFFENDER), provision(emulator, BYSTANDER)
        )
        rest = rest_client(session, emulator)
        async with hub_client(emulator, bystander_hub, BYSTANDER) as bystander:
            yield World(emulator, rest, offender_hub, bystander)


async def assert_everyone_else_served(world: World) -> None:
    """The connected bystander's telemetry still lands, and a new connection is still accepted."""
    mark = await telemetry_mark(world.rest)
    await world.bystander.publish(f"devices/{BYSTANDER}/messages/events/", json.dumps({"alive": 1}), qos=1)
    events = await telemetry_after(world.rest, BYSTANDER, mark)
    assert [event["body"] for event in events] == [{"alive": 1}]
    newcomer = await RawClient.open(world.emulator)
    try:
        scope = world.emulator.application.id_scope
        token = dps_token(scope, "newcomer", primary_key(world.emulator, "newcomer"))
        assert await newcomer.connect("newcomer", dps_username(scope, "newcomer"), token) == (0, False)
    finally:
        await newcomer.close()


async def send_tolerating_close(client: RawClient, data: bytes) -> None:
    # The server may close while a large write is still in flight.
    with contextlib.suppress(ConnectionError):
        await client.send(data)


def truncated_connect() -> bytes:
    packet = bytearray(connect_packet("dev", "user", "password"))
    # Claim the client id is 200 bytes long: the length runs past the end of the packet.
    client_id_at = 2 + 10  # fixed header, then protocol name (6), level, flags, keep-alive (4)
    packet[client_id_at : client_id_at + 2] = (200).to_bytes(2, "big")
    return bytes(packet)


BEFORE_CONNECT = {
    "http request": (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "malformed packet"),
    "zero bytes": (bytes(64), "malformed packet"),
    "truncated CONNECT": (truncated_connect(), "malformed packet"),
    "CONNECT with reserved flag": (
        connect_packet("dev", None, None)[:9] + b"\x03" + connect_packet("dev", None, None)[10:],
        "reserved",
    ),
    "PINGREQ before CONNECT": (bytes([0xC0, 0x00]), "not CONNECT"),
}


@pytest.mark.parametrize("case", list(BEFORE_CONNECT))
async def test_garbage_before_connect(world: World, case: str, caplog: pytest.LogCaptureFixture) -> None:
    data, logged = BEFORE_CONNECT[case]
    caplog.set_level(logging.INFO, logger="emulator")
    client = await RawClient.open(world.emulator)
    try:
        await client.send(data)
        packets = await client.expect_closed()
        assert packets == []  # no CONNACK for garbage: just closed
    finally:
        await client.close()
    assert logged in caplog.text
    await assert_everyone_else_served(world)


@pytest.mark.parametrize(
    "sent", [b"", connect_packet("dev", "u", "p")[:10]], ids=["nothing", "half a CONNECT"]
)
async def test_no_connect_within_timeout(world: World, sent: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="emulator")
    client = await RawClient.open(world.emulator)
    started = time.monotonic()
    try:
        await client.send(sent)
        await client.expect_closed(timeout=CONNECT_TIMEOUT + 3)
    finally:
        await client.close()
    assert CONNECT_TIMEOUT - 0.2 <= time.monotonic() - started <= CONNECT_TIMEOUT + 2
    assert "CONNECT timeout" in caplog.text
    await assert_everyone_else_served(world)


async def test_mqtt_3_1_is_refused_with_connack_1(world: World) -> None:
    client = await RawClient.open(world.emulator)
    try:
        await client.send(connect_packet(OFFENDER, "u", "p", protocol_level=3))
        packets = await client.expect_closed()
        assert [(packet.kind, packet.body) for packet in packets] == [(CONNACK, b"\x00\x01")]
    finally:
        await client.close()
    await assert_everyone_else_served(world)


def oversize_publish(body_bytes: int) -> bytes:
    return publish_packet(f"devices/{OFFENDER}/messages/events/", b"x" * body_bytes, qos=1, packet_id=1)


AFTER_CONNECT = {
    "QoS 2 PUBLISH": (
        publish_packet(f"devices/{OFFENDER}/messages/events/", b"{}", qos=2, packet_id=1),
        "QoS 2",
    ),
    "PUBREL": (bytes([0x62, 0x02, 0x00, 0x01]), "QoS 2"),
    "another device's telemetry topic": (
        publish_packet(f"devices/{BYSTANDER}/messages/events/", b"{}", qos=1, packet_id=1),
        "may not use",
    ),
    "unknown $iothub topic": (publish_packet("$iothub/anything", b"{}"), "may not use"),
    "unsupported filter": (subscribe_packet([("#", 0)], 1), "not supported"),
    "another device's devicebound": (
        subscribe_packet([(f"devices/{BYSTANDER}/messages/devicebound/#", 1)], 1),
        "not supported",
    ),
    "sixth subscription": (
        subscribe_packet(
            [
                ("$iothub/twin/res/#", 0),
                ("$iothub/twin/PATCH/properties/desired/#", 0),
                ("$iothub/methods/POST/#", 0),
                (f"devices/{OFFENDER}/messages/devicebound/#", 1),
                ("$iothub/twin/res/", 0),
                ("$iothub/methods/POST/", 0),
            ],
            1,
        ),
        "more than 5 subscriptions",
    ),
    "body one byte over 256 KB": (oversize_publish(256 * 1024 + 1), "over the 262144 limit"),
    "packet far over 256 KB": (oversize_publish(1024 * 1024), "too large"),
    "second CONNECT": (connect_packet(OFFENDER, "u", "p"), "second CONNECT"),
    "malformed SUBSCRIBE": (bytes([0x82, 0x02, 0x00, 0x01]), "malformed packet"),
}


@pytest.mark.parametrize("case", list(AFTER_CONNECT))
async def test_offence_after_connect(world: World, case: str, caplog: pytest.LogCaptureFixture) -> None:
    data, logged = AFTER_CONNECT[case]
    caplog.set_level(logging.INFO, logger="emulator")
    client = await raw_hub(world.emulator, world.offender_hub, OFFENDER)
    try:
        await send_tolerating_close(client, data)
        packets = await client.expect_closed()
        assert all(packet.kind != CONNACK for packet in packets)
    finally:
        await client.close()
    assert logged in caplog.text
    assert f"hub {OFFENDER} disconnected" in caplog.text
    await assert_everyone_else_served(world)


async def test_exactly_256_kb_is_accepted(world: World) -> None:
    mark = await telemetry_mark(world.rest)
    client = await raw_hub(world.emulator, world.offender_hub, OFFENDER)
    try:
        await client.send(oversize_publish(256 * 1024))
        puback = await client.read_packet()
        assert (puback.kind, puback.packet_id) == (4, 1)
    finally:
        await client.close()
    [event] = await telemetry_after(world.rest, OFFENDER, mark)
    assert event["body"] == "x" * 256 * 1024


async def test_five_subscriptions_are_accepted(world: World) -> None:
    client = await raw_hub(world.emulator, world.offender_hub, OFFENDER)
    try:
        filters = [
            ("$iothub/twin/res/#", 0),
            ("$iothub/twin/PATCH/properties/desired/#", 0),
            ("$iothub/methods/POST/#", 0),
            (f"devices/{OFFENDER}/messages/devicebound/#", 2),
            ("$iothub/twin/res/", 1),
        ]
        assert await client.subscribe(filters) == [0, 0, 0, 1, 1]  # QoS granted at most 1
        assert await client.subscribe([("$iothub/twin/res/#", 1)], packet_id=2) == [1]  # not a new one
    finally:
        await client.close()
