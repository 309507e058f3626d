"""Fault injection through the REST API, observed over real sockets."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.emulator.clients import (
    RawClient,
    dps_client,
    hub_client,
    hub_token,
    hub_username,
    next_message,
    parse_response,
    primary_key,
    provision,
    raw_hub,
    register,
)


async def tcp_refused(port: int) -> bool:
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


async def test_outage_refuses_then_recovers(emulator: Emulator, rest: RestClient) -> None:
    hub = await provision(emulator, "outage-dev")
    client = await raw_hub(emulator, hub, "outage-dev")
    try:
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 1})
        assert status == 200
        started = time.monotonic()
        await client.expect_closed()  # everyone is dropped
    finally:
        await client.close()
    assert await tcp_refused(emulator.mqtt_port)
    async with asyncio.timeout(5):
        while await tcp_refused(emulator.mqtt_port):
            await asyncio.sleep(0.1)
    assert 0.8 <= time.monotonic() - started <= 3
    client = await raw_hub(emulator, hub, "outage-dev")  # accepted again, on the same port
    await client.close()


async def test_clear_ends_an_outage(emulator: Emulator, rest: RestClient) -> None:
    await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
    assert await tcp_refused(emulator.mqtt_port)
    status, _ = await rest.request("POST", "/emulator/faults/clear")
    assert status == 200
    assert not await tcp_refused(emulator.mqtt_port)
    assert await provision(emulator, "after-outage") in emulator.config.hub_names


async def test_disconnect_one_and_all(emulator: Emulator, rest: RestClient) -> None:
    hubs = await asyncio.gather(*(provision(emulator, f"fault-dev-{n}") for n in range(3)))
    clients = [await raw_hub(emulator, hub, f"fault-dev-{n}") for n, hub in enumerate(hubs)]
    try:
        status, result = await rest.request("POST", "/emulator/faults/disconnect/fault-dev-1")
        assert (status, result) == (200, {"dropped": 1})
        await clients[1].expect_closed()
        for survivor in (clients[0], clients[2]):  # still served
            assert await survivor.subscribe([("$iothub/twin/res/#", 0)]) == [0]
        status, result = await rest.request("POST", "/emulator/faults/disconnect/fault-dev-1")
        assert result == {"dropped": 0}  # nothing left to drop

        status, result = await rest.request("POST", "/emulator/faults/disconnect-all")
        assert (status, result) == (200, {"dropped": 2})
        for client in (clients[0], clients[2]):
            await client.expect_closed()
    finally:
        for client in clients:
            await client.close()
    # They may come straight back.
    client = await raw_hub(emulator, hubs[0], "fault-dev-0")
    await client.close()


async def test_hub_throttle_and_clear(emulator: Emulator, rest: RestClient) -> None:
    device_id = "throttled-dev"
    hub = await provision(emulator, device_id)
    token = hub_token(hub, device_id, primary_key(emulator, device_id))
    async with hub_client(emulator, hub, device_id) as client:
        await client.subscribe("$iothub/twin/res/#", qos=0)
        status, _ = await rest.request("POST", "/emulator/faults/throttle", {"seconds": 30, "scope": "hub"})
        assert status == 200
        await client.publish("$iothub/twin/GET/?$rid=1", b"", qos=0)
        assert parse_response(await next_message(client)).status == 429
        await client.publish("$iothub/twin/PATCH/properties/reported/?$rid=2", json.dumps({"a": 1}), qos=0)
        assert parse_response(await next_message(client)).status == 429

        raw = await RawClient.open(emulator)
        try:
            assert await raw.connect(device_id, hub_username(hub, device_id), token) == (3, False)
            await raw.expect_closed()
        finally:
            await raw.close()
        await client.publish("$iothub/twin/GET/?$rid=9", b"", qos=0)  # the refused one dropped nobody
        assert parse_response(await next_message(client)).query["$rid"] == "9"
        # DPS is not throttled by a hub-only fault.
        async with dps_client(emulator, "throttled-dev-3") as dps:
            assert (await register(dps, "throttled-dev-3")).status == 200

        await rest.request("POST", "/emulator/faults/clear")
        await client.publish("$iothub/twin/GET/?$rid=3", b"", qos=0)
        assert parse_response(await next_message(client)).status == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/emulator/faults/throttle", {"seconds": 1, "scope": "everywhere"}),
        ("/emulator/faults/throttle", {"seconds": "ten"}),
        ("/emulator/faults/outage", {"seconds": -1}),
        ("/emulator/faults/move/nobody", {}),
    ],
)
async def test_bad_fault_requests(emulator: Emulator, rest: RestClient, path: str, body: object) -> None:
    status, _ = await rest.request("POST", path, body)
    assert status in (400, 404)
    assert not await tcp_refused(emulator.mqtt_port)
