"""The IoT Hub device endpoint over TLS MQTT (PROTOCOLS.md §2), after a real DPS assignment."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aiomqtt
import pytest

from emulator.app import Emulator
from emulator.state import Device
from tests.conftest import RestClient, device_template, emulator_config, rest_client
from tests.emulator.clients import (
    MODEL_ID,
    PUBLISH,
    RawClient,
    device_key,
    hub_client,
    hub_token,
    hub_username,
    next_message,
    no_message,
    parse_response,
    primary_key,
    provision,
    puback_packet,
    publish_packet,
    raw_hub,
    telemetry_after,
    telemetry_mark,
)


@dataclass(frozen=True, slots=True)
class Provisioned:
    device_id: str
    hub: str


@pytest.fixture
async def device(emulator: Emulator) -> Provisioned:
    emulator.publish_template(MODEL_ID, device_template(MODEL_ID))
    return Provisioned("hub-dev-01", await provision(emulator, "hub-dev-01"))


async def c2d_drained(device: Device, limit: float = 5) -> None:
    """Wait for the emulator to complete (drop) every queued cloud-to-device message of `device`."""
    async with asyncio.timeout(limit):
        while device.c2d:
            await asyncio.sleep(0.05)


async def refused_with(emulator: Emulator, hub: str, device_id: str, password: str | None) -> int:
    """Connect raw; the CONNACK return code (the connection must then be closed when it is not 0)."""
    client = await RawClient.open(emulator, server_hostname=hub)
    try:
        code, _ = await client.connect(device_id, hub_username(hub, device_id), password)
        if code:
            await client.expect_closed()
        return code
    finally:
        await client.close()


async def test_telemetry_with_property_bag(emulator: Emulator, rest: RestClient, device: Provisioned) -> None:
    mark = await telemetry_mark(rest)
    bag = (
        "%24.sub=thermostat1&%24.ct=application%2Fjson&%24.ce=utf-8"
        "&iothub-creation-time-utc=2026-11-26T08%3A00%3A00.000Z&sensor-kind=ds18b20"
    )
    async with hub_client(emulator, device.hub, device.device_id) as client:
        topic = f"devices/{device.device_id}/messages/events/{bag}"
        await client.publish(topic, json.dumps({"temperature": 21.5}), qos=1)
        await client.publish(
            f"devices/{device.device_id}/messages/events/", b"plain text", qos=0, retain=True
        )
        await client.publish(f"devices/{device.device_id}/messages/events/", b"\xff\x00", qos=1)
        events = await telemetry_after(rest, device.device_id, mark)
        async with asyncio.timeout(5):
            while len(events) < 3:
                events += await telemetry_after(rest, device.device_id, events[-1]["sequence"])
    first, second, third = events
    assert first["deviceId"] == device.device_id
    assert first["hub"] == device.hub
    assert first["component"] == "thermostat1"
    assert first["body"] == {"temperature": 21.5}
    assert first["systemProperties"] == {
        "component": "thermostat1",
        "contentType": "application/json",
        "contentEncoding": "utf-8",
    }
    assert first["properties"] == {
        "iothub-creation-time-utc": "2026-11-26T08:00:00.000Z",
        "sensor-kind": "ds18b20",
    }
    assert second["component"] is None
    assert second["body"] == "plain text"
    assert second["properties"] == {"mqtt-retain": "true"}
    assert third["body"] == {"base64": "/wA="}
    value = await rest.get(f"/api/devices/{device.device_id}/components/thermostat1/telemetry/temperature")
    assert value == {"timestamp": "2026-11-26T08:00:00.000Z", "value": 21.5}
    # The announced model id, a published template, is the device's template.
    assert (await rest.get(f"/api/devices/{device.device_id}"))["template"] == MODEL_ID


async def test_twin_get_and_reported_patch(emulator: Emulator, rest: RestClient, device: Provisioned) -> None:
    async with hub_client(emulator, device.hub, device.device_id) as client:
        await client.subscribe("$iothub/twin/res/#", qos=0)
        await client.publish("$iothub/twin/GET/?$rid=1", b"", qos=0)
        twin = parse_response(await next_message(client))
        assert (twin.status, twin.query["$rid"]) == (200, "1")
        assert twin.body == {"desired": {"$version": 1}, "reported": {"$version": 1}}

        patch = {"manufacturer": "Contoso", "thermostat1": {"__t": "c", "maxTemp": 30.5}}
        await client.publish("$iothub/twin/PATCH/properties/reported/?$rid=2", json.dumps(patch), qos=0)
        patched = parse_response(await next_message(client))
        assert (patched.status, patched.query["$rid"], patched.query["$version"]) == (204, "2", "2")
        assert patched.body is None

        await client.publish(
            "$iothub/twin/PATCH/properties/reported/?$rid=3", json.dumps({"manufacturer": None}), qos=0
        )
        assert parse_response(await next_message(client)).query["$version"] == "3"

        for rid, body in ((4, b"not json"), (5, b"[1, 2]"), (6, b'{"$version": 9}')):
            await client.publish(f"$iothub/twin/PATCH/properties/reported/?$rid={rid}", body, qos=0)
            bad = parse_response(await next_message(client))
            assert (bad.status, bad.query["$rid"]) == (400, str(rid))

        await client.publish("$iothub/twin/GET/?$rid=7", b"", qos=0)
        after = parse_response(await next_message(client))
    assert after.body["reported"] == {"thermostat1": {"__t": "c", "maxTemp": 30.5}, "$version": 3}
    component = await rest.get(f"/api/devices/{device.device_id}/components/thermostat1/properties")
    assert component["maxTemp"] == 30.5


async def test_desired_patch_pushed(emulator: Emulator, rest: RestClient, device: Provisioned) -> None:
    async with hub_client(emulator, device.hub, device.device_id) as client:
        await client.subscribe("$iothub/twin/PATCH/properties/desired/#", qos=0)
        status, _ = await rest.request("PATCH", f"/api/devices/{device.device_id}/properties", {"target": 22})
        assert status == 202
        message = await next_message(client)
        assert message.topic.value == "$iothub/twin/PATCH/properties/desired/?$version=2"
        assert isinstance(message.payload, bytes)
        assert json.loads(message.payload) == {"target": 22, "$version": 2}

        path = f"/api/devices/{device.device_id}/components/thermostat1/properties"
        status, _ = await rest.request("PATCH", path, {"mode": "eco"})
        assert status == 202
        message = await next_message(client)
        assert message.topic.value == "$iothub/twin/PATCH/properties/desired/?$version=3"
        assert isinstance(message.payload, bytes)
        assert json.loads(message.payload) == {"thermostat1": {"__t": "c", "mode": "eco"}, "$version": 3}
    view = await rest.get(f"/api/devices/{device.device_id}/properties")
    # desiredVersion is the property's own: the version of the patch that last wrote it.
    assert view["$metadata"]["target"] == {"desiredValue": 22, "desiredVersion": 2}


async def test_direct_method_round_trip(emulator: Emulator, rest: RestClient, device: Provisioned) -> None:
    path = f"/api/devices/{device.device_id}"
    async with hub_client(emulator, device.hub, device.device_id) as client:
        await client.subscribe("$iothub/methods/POST/#", qos=0)
        for command, method in (("/commands/reboot", "reboot"), ("/components/th1/commands/set", "th1*set")):
            call = asyncio.create_task(rest.request("POST", path + command, {"request": {"delay": 5}}))
            message = await next_message(client)
            name, _, query = message.topic.value.removeprefix("$iothub/methods/POST/").partition("/?")
            assert name == method
            rid = query.removeprefix("$rid=")
            int(rid, 16)  # IoT Hub's $rid is hexadecimal
            assert isinstance(message.payload, bytes)
            assert json.loads(message.payload) == {"delay": 5}
            await client.publish(f"$iothub/methods/res/200/?$rid={rid}", json.dumps({"ok": method}), qos=0)
            async with asyncio.timeout(5):
                status, result = await call
            assert status == 201, result
            assert result["responseCode"] == 200
            assert result["response"] == {"ok": method}

        # Subscribed but silent: IoT Central gives up with 408.
        started = time.monotonic()
        status, result = await rest.request(
            "POST", path + "/commands/reboot", {"request": {}, "responseTimeout": 5}
        )
        assert status == 408, result
        assert result["error"]["code"] == "RequestTimeout"
        assert 4.9 <= time.monotonic() - started < 8
        await next_message(client)  # the request did reach the device
    # Offline: 408 as well.
    status, _ = await rest.request("POST", path + "/commands/reboot", {"request": {}})
    assert status == 408


async def test_c2d_completed_on_puback(emulator: Emulator, rest: RestClient, device: Provisioned) -> None:
    path = f"/api/devices/{device.device_id}/commands/setMode?queued=true"
    status, queued = await rest.request("POST", path, {"request": {"mode": "eco"}})
    assert status == 202
    state = emulator.application.devices[device.device_id]
    assert [message.message_id for message in state.c2d] == [queued["messageId"]]

    client = await raw_hub(emulator, device.hub, device.device_id)
    try:
        assert await client.subscribe([(f"devices/{device.device_id}/messages/devicebound/#", 1)]) == [1]
        delivered = await client.expect(PUBLISH)
        assert delivered.qos == 1
        prefix = f"devices/{device.device_id}/messages/devicebound/"
        assert delivered.topic.startswith(prefix)
        bag = dict(item.split("=", 1) for item in delivered.topic[len(prefix) :].split("&"))
        assert bag["method-name"] == "setMode"
        assert bag["%24.mid"] == queued["messageId"]
        assert bag["iothub-ack"] == "none"
        assert json.loads(delivered.payload) == {"mode": "eco"}
        # A ping's answer: the hub has read everything sent before it on this connection, yet the message
        # is not completed before the PUBACK.
        await client.send(bytes([0xC0, 0x00]))  # PINGREQ
        assert (await client.read_packet()).kind == 13  # PINGRESP
        assert len(state.c2d) == 1
        await client.send(puback_packet(delivered.packet_id))
        await c2d_drained(state)
    finally:
        await client.close()


async def test_c2d_kept_across_restart(tmp_path: Path) -> None:
    config = emulator_config(tmp_path / "state")
    device_id = "hub-dev-c2d"
    async with Emulator(config) as first:
        hub = await provision(first, device_id)
        async with aiohttp.ClientSession() as session:
            rest = rest_client(session, first)
            path = f"/api/devices/{device_id}/commands/setMode?queued=true"
            status, queued = await rest.request("POST", path, {"request": {"mode": "away"}})
            assert status == 202
    async with Emulator(config) as second:
        async with hub_client(second, hub, device_id) as client:
            await client.subscribe(f"devices/{device_id}/messages/devicebound/#", qos=1)
            message = await next_message(client)
        assert "method-name=setMode" in message.topic.value
        assert queued["messageId"] in message.topic.value
        assert isinstance(message.payload, bytes)
        assert json.loads(message.payload) == {"mode": "away"}
        await c2d_drained(second.application.devices[device_id])


async def test_refusals(emulator: Emulator, rest: RestClient, device: Provisioned) -> None:
    key = primary_key(emulator, device.device_id)
    wrong_key = device_key(emulator.application.group_primary_key, "other")
    cases = {
        "wrong key": hub_token(device.hub, device.device_id, wrong_key),
        "another device's resource": hub_token(device.hub, "other", key),
        "expired": hub_token(device.hub, device.device_id, key, ttl=-5),
        "garbage": "SharedAccessSignature nonsense",
    }
    for what, password in cases.items():
        assert await refused_with(emulator, device.hub, device.device_id, password) == 5, what
    assert await refused_with(emulator, device.hub, device.device_id, None) == 5
    # A device DPS never assigned is not on any hub.
    stranger = hub_token(device.hub, "never-provisioned", primary_key(emulator, "never-provisioned"))
    assert await refused_with(emulator, device.hub, "never-provisioned", stranger) == 5
    # Client id must be the device id.
    client = await RawClient.open(emulator)
    try:
        code, _ = await client.connect(
            "other", hub_username(device.hub, device.device_id), cases["wrong key"]
        )
        assert code == 2
    finally:
        await client.close()
    # The secondary key is as good as the primary.
    secondary = device_key(emulator.application.group_secondary_key, device.device_id)
    by_secondary = hub_token(device.hub, device.device_id, secondary)
    assert await refused_with(emulator, device.hub, device.device_id, by_secondary) == 0


async def test_moved_device(emulator: Emulator, rest: RestClient, device: Provisioned) -> None:
    async with hub_client(emulator, device.hub, device.device_id) as client:
        status, moved = await rest.request("POST", f"/emulator/faults/move/{device.device_id}", {})
        assert status == 200
        new_hub = moved["assignedHub"]
        assert new_hub != device.hub
        assert new_hub in emulator.config.hub_names
        with pytest.raises(aiomqtt.MqttError):  # the old hub drops the connection
            await next_message(client)
    token = hub_token(device.hub, device.device_id, primary_key(emulator, device.device_id))
    assert await refused_with(emulator, device.hub, device.device_id, token) == 5
    assert await provision(emulator, device.device_id) == new_hub
    async with hub_client(emulator, new_hub, device.device_id) as client:
        await client.publish(f"devices/{device.device_id}/messages/events/", b"{}", qos=1)


async def test_disabled_device(emulator: Emulator, rest: RestClient, device: Provisioned) -> None:
    client = await raw_hub(emulator, device.hub, device.device_id)
    try:
        status, _ = await rest.request("PUT", f"/api/devices/{device.device_id}", {"enabled": False})
        assert status == 200
        await client.expect_closed()  # disabling drops a connected device
    finally:
        await client.close()
    token = hub_token(device.hub, device.device_id, primary_key(emulator, device.device_id))
    assert await refused_with(emulator, device.hub, device.device_id, token) == 3


async def test_second_connection_drops_the_first(
    emulator: Emulator, rest: RestClient, device: Provisioned
) -> None:
    """IoT Hub keeps one connection per identity and closes the previous one (400027,
    https://learn.microsoft.com/azure/iot-hub/troubleshoot-error-codes); over MQTT 3.1.1 the server has no
    DISCONNECT to send, so the older client sees its connection closed and nothing else."""
    first = await raw_hub(emulator, device.hub, device.device_id)
    second = await raw_hub(emulator, device.hub, device.device_id)
    try:
        assert await first.expect_closed() == []  # no packet tells why
        assert await second.subscribe([("$iothub/twin/res/#", 0)]) == [0]
        activity = await rest.get(f"/emulator/activity?deviceId={device.device_id}")
        assert activity == {device.device_id: {"dpsRegistrations": 1, "hubConnects": 2, "takenOver": 1}}
    finally:
        await first.close()
        await second.close()


async def test_token_expiry_drops_the_connection(emulator: Emulator, device: Provisioned) -> None:
    token = hub_token(device.hub, device.device_id, primary_key(emulator, device.device_id), ttl=2)
    expiry = int(token.rsplit("se=", 1)[1])
    client = await RawClient.open(emulator)
    try:
        code, _ = await client.connect(device.device_id, hub_username(device.hub, device.device_id), token)
        assert code == 0
        await client.expect_closed(timeout=5)
        assert time.time() >= expiry - 0.1
    finally:
        await client.close()


async def test_expire_tokens_fault(emulator: Emulator, rest: RestClient, device: Provisioned) -> None:
    token = hub_token(device.hub, device.device_id, primary_key(emulator, device.device_id))
    client = await RawClient.open(emulator)
    try:
        assert (await client.connect(device.device_id, hub_username(device.hub, device.device_id), token))[
            0
        ] == 0
        status, result = await rest.request("POST", "/emulator/faults/expire-tokens")
        assert (status, result) == (200, {"dropped": 1})
        await client.expect_closed()
    finally:
        await client.close()
    assert await refused_with(emulator, device.hub, device.device_id, token) == 5
    fresh = hub_token(device.hub, device.device_id, primary_key(emulator, device.device_id), ttl=3601)
    assert await refused_with(emulator, device.hub, device.device_id, fresh) == 0


async def test_keep_alive_silence_drops(emulator: Emulator, device: Provisioned) -> None:
    client = await raw_hub(emulator, device.hub, device.device_id, keepalive=1)
    started = time.monotonic()
    try:
        await client.expect_closed(timeout=5)
    finally:
        await client.close()
    assert 1.3 <= time.monotonic() - started <= 3.0


async def test_keep_alive_pings_keep_the_connection(emulator: Emulator, device: Provisioned) -> None:
    client = await raw_hub(emulator, device.hub, device.device_id, keepalive=1)
    try:
        for _ in range(5):  # 2.5 s, well past 1.5 × keep-alive
            await client.send(bytes([0xC0, 0x00]))
            assert (await client.read_packet()).kind == 13  # PINGRESP
            await asyncio.sleep(0.5)  # the client's keep-alive pace: time passing is what is tested
    finally:
        await client.close()


async def test_session_present_with_clean_session_0(emulator: Emulator, device: Provisioned) -> None:
    token = hub_token(device.hub, device.device_id, primary_key(emulator, device.device_id))
    username = hub_username(device.hub, device.device_id)
    client = await RawClient.open(emulator)
    try:
        assert await client.connect(device.device_id, username, token, clean_session=False) == (0, False)
        await client.subscribe([("$iothub/twin/res/#", 0)])
    finally:
        await client.close()
    client = await RawClient.open(emulator)
    try:
        assert await client.connect(device.device_id, username, token, clean_session=False) == (0, True)
        # The kept subscription delivers the twin response without a new SUBSCRIBE.
        await client.send(publish_packet("$iothub/twin/GET/?$rid=9", b""))
        response = await client.expect(PUBLISH)
        assert response.topic == "$iothub/twin/res/200/?$rid=9"
    finally:
        await client.close()
    client = await RawClient.open(emulator)
    try:
        assert await client.connect(device.device_id, username, token, clean_session=True) == (0, False)
    finally:
        await client.close()


@pytest.fixture
async def two_devices(emulator: Emulator) -> AsyncIterator[tuple[Provisioned, Provisioned]]:
    a, b = await asyncio.gather(provision(emulator, "iso-dev-a"), provision(emulator, "iso-dev-b"))
    yield Provisioned("iso-dev-a", a), Provisioned("iso-dev-b", b)


async def test_per_connection_isolation(
    emulator: Emulator, two_devices: tuple[Provisioned, Provisioned]
) -> None:
    a, b = two_devices
    async with (
        hub_client(emulator, a.hub, a.device_id) as client_a,
        hub_client(emulator, b.hub, b.device_id) as client_b,
    ):
        for client in (client_a, client_b):
            await client.subscribe("$iothub/twin/res/#", qos=0)
            await client.subscribe("$iothub/twin/PATCH/properties/desired/#", qos=0)
        await client_b.publish("$iothub/twin/GET/?$rid=1", b"", qos=0)
        await client_b.publish("$iothub/twin/PATCH/properties/reported/?$rid=2", b'{"x": 1}', qos=0)
        assert parse_response(await next_message(client_b)).status == 200
        assert parse_response(await next_message(client_b)).status == 204
        await no_message(client_a, 0.5)
        await client_a.publish("$iothub/twin/GET/?$rid=1", b"", qos=0)
        mine = parse_response(await next_message(client_a))
        assert mine.body["reported"] == {"$version": 1}  # A's twin, not B's
        await no_message(client_b, 0.3)
