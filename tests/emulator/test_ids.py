"""Registration ids and device ids, validated as DPS and IoT Hub document them (emulator/ids.py cites the
pages), and the device id raw in hub topics, as IoT Hub and Microsoft's SDK write it."""

from __future__ import annotations

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.emulator.clients import (
    RawClient,
    dps_client,
    hub_token,
    hub_username,
    primary_key,
    provision,
    publish_packet,
    raw_hub,
    register,
    telemetry_after,
    telemetry_mark,
)


@pytest.mark.parametrize(
    "registration_id",
    ["urn:imei:3512-00000", "Dev-1", "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", "a" * 128, "dev-", "a.b_c:d"],
)
async def test_dps_accepts_documented_registration_ids(emulator: Emulator, registration_id: str) -> None:
    async with dps_client(emulator, registration_id) as client:
        response = await register(client, registration_id)
    assert response.status == 200, response


@pytest.mark.parametrize(
    "registration_id",
    ["dev%41", "dev 1", "dev.", "dev_", "dev:", "-dev", ".dev", "a" * 129, "dev$1", "dev'1", "ä"],
)
async def test_dps_refuses_other_registration_ids(emulator: Emulator, registration_id: str) -> None:
    """DPS answers 400 to a request it cannot validate (how-to-troubleshoot-dps, error code 400)."""
    async with dps_client(emulator, registration_id) as client:
        response = await register(client, registration_id)
    assert response.status == 400, response
    assert response.body["errorCode"] == 400004
    assert emulator.application.device(registration_id) is None


@pytest.mark.parametrize("device_id", ["a+b", "a#b", "a;b", "dev 1", "a" * 129, "ä"])
async def test_hub_refuses_device_ids_it_cannot_hold(emulator: Emulator, device_id: str) -> None:
    hub = emulator.config.hub_names[0]
    client = await RawClient.open(emulator, server_hostname=hub)
    try:
        code, _ = await client.connect(
            device_id,
            hub_username(hub, device_id),
            hub_token(hub, device_id, primary_key(emulator, device_id)),
        )
        assert code == 2  # identifier rejected: no such device can exist
    finally:
        await client.close()


async def test_device_id_is_raw_in_hub_topics(emulator: Emulator, rest: RestClient) -> None:
    device_id = "urn:imei:3512-00000"
    hub = await provision(emulator, device_id)
    mark = await telemetry_mark(rest)
    client = await raw_hub(emulator, hub, device_id)
    try:
        await client.send(publish_packet(f"devices/{device_id}/messages/events/", b'{"t": 1}'))
        [event] = await telemetry_after(rest, device_id, mark)
        assert event["body"] == {"t": 1}
        # The percent-encoded form names no device IoT Hub knows: publishing there ends the connection.
        await client.send(publish_packet("devices/urn%3Aimei%3A3512-00000/messages/events/", b'{"t": 2}'))
        await client.expect_closed()
    finally:
        await client.close()


async def test_rest_refuses_invalid_device_ids(rest: RestClient) -> None:
    status, body = await rest.request("PUT", "/api/devices/bad+id", {"displayName": "x"})
    assert status == 400, body
    status, _ = await rest.request("PUT", "/api/devices/urn:imei:3512-00001", {"displayName": "x"})
    assert status == 200
