"""DPS over TLS MQTT, driven with aiomqtt and test-side SAS tokens (PROTOCOLS.md §1)."""

from __future__ import annotations

import asyncio
import time

from emulator.app import Emulator
from tests.conftest import RestClient, device_template
from tests.emulator.clients import (
    MODEL_ID,
    RawClient,
    device_key,
    dps_client,
    dps_request,
    dps_token,
    dps_username,
    next_message,
    parse_response,
    poll_topic,
    primary_key,
    register,
    register_topic,
)


async def test_registration_success_flow(emulator: Emulator, rest: RestClient) -> None:
    device_id = "dps-dev-01"
    # README step 2: the template is published before the device first connects.
    status, _ = await rest.request("PUT", f"/api/deviceTemplates/{MODEL_ID}", device_template(MODEL_ID))
    assert status == 200
    async with dps_client(emulator, device_id) as client:
        await client.subscribe("$dps/registrations/res/#", qos=1)
        started = time.monotonic()
        accepted = await dps_request(
            client, register_topic(1), {"registrationId": device_id, "payload": {"modelId": MODEL_ID}}
        )
        assert accepted.status == 202
        assert accepted.query["$rid"] == "1"
        assert accepted.query["retry-after"] == "1"  # the fixture's dps_retry_after
        assert accepted.body["status"] == "assigning"
        operation_id = accepted.body["operationId"]
        assert operation_id

        # Honour retry-after, as a device must.
        await asyncio.sleep(int(accepted.query["retry-after"]))
        done = await dps_request(client, poll_topic(2, operation_id))
        assert time.monotonic() - started >= 1
    assert done.status == 200
    assert done.query["$rid"] == "2"
    assert done.body["operationId"] == operation_id
    assert done.body["status"] == "assigned"
    state = done.body["registrationState"]
    assert state["assignedHub"] in emulator.config.hub_names
    assert state["deviceId"] == device_id
    assert state["registrationId"] == device_id
    assert state["status"] == "assigned"
    assert state["substatus"] == "initialAssignment"

    device = await rest.get(f"/api/devices/{device_id}")
    assert device["template"] == MODEL_ID
    assert device["provisioned"] is True
    assert device["enabled"] is True
    listed = await rest.get("/api/devices")
    assert [entry["id"] for entry in listed["value"]] == [device_id]


async def test_poll_before_assignment_answers_202(emulator: Emulator) -> None:
    device_id = "dps-dev-early"
    async with dps_client(emulator, device_id) as client:
        await client.subscribe("$dps/registrations/res/#", qos=1)
        accepted = await dps_request(client, register_topic(1), {"registrationId": device_id})
        early = await dps_request(client, poll_topic(2, accepted.body["operationId"]))  # under 0.2 s
        assert early.status == 202
        assert early.body["status"] == "assigning"
        assert "retry-after" in early.query
        unknown = await dps_request(client, poll_topic(3, "4.no-such-operation"))
        assert unknown.status == 404
        assert unknown.body["errorCode"] == 404006


async def test_wrong_key_is_401002(emulator: Emulator, rest: RestClient) -> None:
    device_id = "dps-dev-wrong"
    wrong = device_key(emulator.application.group_primary_key, "another-device")
    async with dps_client(emulator, device_id, key=wrong) as client:
        response = await register(client, device_id)
    assert response.status == 401
    assert response.body["errorCode"] == 401002
    assert response.body["trackingId"]
    status, _ = await rest.request("GET", f"/api/devices/{device_id}")
    assert status == 404  # nothing was registered


async def test_expired_token_is_401002(emulator: Emulator) -> None:
    device_id = "dps-dev-expired"
    token = dps_token(emulator.application.id_scope, device_id, primary_key(emulator, device_id), ttl=-10)
    async with dps_client(emulator, device_id, password=token) as client:
        response = await register(client, device_id)
    assert (response.status, response.body["errorCode"]) == (401, 401002)


async def test_secondary_key_works(emulator: Emulator) -> None:
    device_id = "dps-dev-secondary"
    secondary = device_key(emulator.application.group_secondary_key, device_id)
    async with dps_client(emulator, device_id, key=secondary) as client:
        response = await register(client, device_id)
    assert response.status == 200
    assert response.body["registrationState"]["deviceId"] == device_id


async def test_blocked_device_is_401_400209(emulator: Emulator, rest: RestClient) -> None:
    # "401 Unauthorized, 400209: the device is either waiting for approval by an operator or has been blocked"
    # (https://learn.microsoft.com/azure/iot-central/core/troubleshoot-connection).
    device_id = "dps-dev-blocked"
    status, view = await rest.request("PUT", f"/api/devices/{device_id}", {"enabled": False})
    assert status == 200
    assert view["enabled"] is False
    async with dps_client(emulator, device_id) as client:
        response = await register(client, device_id)
    assert response.status == 401
    assert response.body["errorCode"] == 400209

    # Unblocked, the same device registers.
    await rest.request("PATCH", f"/api/devices/{device_id}", {"enabled": True})
    async with dps_client(emulator, device_id) as client:
        assert (await register(client, device_id)).status == 200


async def test_throttled_is_429_with_retry_after(emulator: Emulator, rest: RestClient) -> None:
    device_id = "dps-dev-throttled"
    status, _ = await rest.request("POST", "/emulator/faults/throttle", {"seconds": 30, "scope": "dps"})
    assert status == 200
    async with dps_client(emulator, device_id) as client:
        response = await register(client, device_id)
        assert response.status == 429
        assert response.body["errorCode"] == 429001
        assert 25 <= int(response.query["retry-after"]) <= 30
        await rest.request("POST", "/emulator/faults/clear")
        again = await register(client, device_id)
    assert again.status == 200


async def test_registration_id_mismatch_in_body_is_400(emulator: Emulator) -> None:
    device_id = "dps-dev-body"
    async with dps_client(emulator, device_id) as client:
        await client.subscribe("$dps/registrations/res/#", qos=1)
        response = await dps_request(client, register_topic(1), {"registrationId": "someone-else"})
        assert response.status == 400
        bad = await dps_request(client, register_topic(2), None)  # empty body is allowed: {}
        assert bad.status == 202
        await client.publish(register_topic(3), b"[not json", qos=0)
        assert parse_response(await next_message(client)).status == 400


async def test_client_id_other_than_registration_id_is_refused(emulator: Emulator) -> None:
    device_id = "dps-dev-clientid"
    scope = emulator.application.id_scope
    client = await RawClient.open(emulator)
    try:
        code, _ = await client.connect(
            "not-the-registration-id",
            dps_username(scope, device_id),
            dps_token(scope, device_id, primary_key(emulator, device_id)),
        )
        assert code == 2  # identifier rejected
        await client.expect_closed()
    finally:
        await client.close()


async def test_unknown_id_scope_is_refused(emulator: Emulator) -> None:
    device_id = "dps-dev-scope"
    client = await RawClient.open(emulator)
    try:
        code, _ = await client.connect(
            device_id,
            dps_username("0neOTHER000", device_id),
            dps_token("0neOTHER000", device_id, primary_key(emulator, device_id)),
        )
        assert code == 5
        await client.expect_closed()
    finally:
        await client.close()


async def test_without_auto_approve_an_unknown_device_waits_for_approval(
    emulator: Emulator, rest: RestClient
) -> None:
    """Auto approve off: a device nobody registered, with valid credentials, is refused 401/400209 and shows
    as Waiting for approval (provisioned false, enabled false) until approved with `enabled: true`
    (https://learn.microsoft.com/azure/iot-central/core/howto-manage-devices-individually#device-status-values)."""
    status, body = await rest.request("PUT", "/emulator/approval", {"autoApprove": False})
    assert (status, body) == (200, {"autoApprove": False})
    device_id = "dps-dev-waiting"
    async with dps_client(emulator, device_id) as client:
        refused = await register(client, device_id)
        again = await register(client, device_id)
    assert (refused.status, refused.body["errorCode"]) == (401, 400209)
    assert "approve" in refused.body["message"].lower()
    assert again.status == 401
    view = await rest.get(f"/api/devices/{device_id}")
    assert (view["enabled"], view["provisioned"]) == (False, False)
    assert (await rest.get(f"/emulator/attempts?deviceId={device_id}"))["dps"] == 2

    status, _ = await rest.request("PATCH", f"/api/devices/{device_id}", {"enabled": True})
    assert status == 200
    async with dps_client(emulator, device_id) as client:
        assert (await register(client, device_id)).status == 200
    view = await rest.get(f"/api/devices/{device_id}")
    assert (view["enabled"], view["provisioned"]) == (True, True)


async def test_a_registered_device_needs_no_approval(emulator: Emulator, rest: RestClient) -> None:
    """Devices added by an operator are approved already (Registered: enabled true)."""
    await rest.request("PUT", "/emulator/approval", {"autoApprove": False})
    device_id = "dps-dev-added"
    status, _ = await rest.request("PUT", f"/api/devices/{device_id}", {"displayName": "added"})
    assert status == 200
    async with dps_client(emulator, device_id) as client:
        assert (await register(client, device_id)).status == 200


async def _register_through(emulator: Emulator, device_id: str, gateway: str | None) -> None:
    payload: dict[str, object] = {"modelId": MODEL_ID}
    if gateway is not None:
        payload["iotcGateway"] = {"iotcGatewayId": gateway}
    async with dps_client(emulator, device_id) as client:
        await client.subscribe("$dps/registrations/res/#", qos=1)
        body = {"registrationId": device_id, "payload": payload}
        accepted = await dps_request(client, register_topic(1), body)
        assert accepted.status == 202
        await asyncio.sleep(0.3)  # the fixture's assignment delay (0.2 s): honoured, as a device must
        done = await dps_request(client, poll_topic(2, accepted.body["operationId"]))
        assert done.status == 200, done


async def test_a_registration_through_a_gateway_makes_the_relationship(
    emulator: Emulator, rest: RestClient
) -> None:
    """`payload.iotcGateway.iotcGatewayId` relates the device to its gateway; the REST API lists it from both
    ends as `{id, source, target}` (2022-07-31 Devices - List Relationships), and a registration through
    another gateway moves the device (one gateway per downstream device)."""
    for device_id, gateway in (("gw-a", None), ("gw-b", None), ("leaf-1", "gw-a")):
        await _register_through(emulator, device_id, gateway)
    listed = (await rest.get("/api/devices/gw-a/relationships"))["value"]
    assert [(r["source"], r["target"]) for r in listed] == [("gw-a", "leaf-1")]
    assert (await rest.get("/api/devices/leaf-1/relationships"))["value"] == listed
    one = await rest.get(f"/api/devices/gw-a/relationships/{listed[0]['id']}")
    assert one == listed[0]
    await _register_through(emulator, "leaf-1", "gw-b")
    assert (await rest.get("/api/devices/gw-a/relationships"))["value"] == []
    moved = (await rest.get("/api/devices/leaf-1/relationships"))["value"]
    assert [(r["source"], r["target"]) for r in moved] == [("gw-b", "leaf-1")]

    # Over REST, as IoT Central's example: PUT {source, target} under an id of the caller's choosing.
    body = {"source": "gw-b", "target": "gw-a"}
    status, made = await rest.request("PUT", "/api/devices/gw-b/relationships/rel-1", body)
    assert (status, made) == (200, {"id": "rel-1", **body})
    status, _ = await rest.request("DELETE", "/api/devices/gw-b/relationships/rel-1")
    assert status == 204
    status, _ = await rest.request("GET", "/api/devices/gw-b/relationships/rel-1")
    assert status == 404
