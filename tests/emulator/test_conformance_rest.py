"""The REST API's shapes, written from IoT Central's 2022-07-31 data-plane reference.

- api-version is a required query parameter of every call:
  https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/get-properties
- every call needs an Authorization header (API token):
  https://learn.microsoft.com/azure/iot-central/core/howto-authorize-rest-api
- "Throttling limit: 20 requests per second per application", 429: https://learn.microsoft.com/rest/api/iotcentral/throttling
- properties: GET with `$metadata.{p}.lastUpdateTime` / `desiredValue` / `desiredVersion`, PATCH 202 with
  `$metadata.{p}.desiredValue`, PUT replaces:
  https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/update-properties
  https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/replace-properties
- components: https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/list-components
- commands (connectionTimeout 0–30, responseTimeout 5–30, seconds) and their history:
  https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/run-command
  https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/get-command-history
- device templates (PUT/GET/list): https://learn.microsoft.com/azure/iot-central/core/howto-manage-device-templates-with-rest-api
- errors carry `requestId` and `time`: https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/get
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.app import Emulator
from tests.conftest import RestClient, device_template, emulator_config, rest_client
from tests.emulator.clients import MODEL_ID, hub_client, next_message, provision

THERMOSTAT: list[dict[str, Any]] = [
    {"@type": "Property", "name": "targetTemp", "schema": "double", "writable": True},
    {"@type": "Property", "name": "serial", "schema": "string"},
    {"@type": "Command", "name": "reboot", "request": {"name": "delay", "schema": "integer"}},
    {
        "@type": "Component",
        "name": "thermostat1",
        "schema": {
            "@id": "dtmi:com:example:Thermostat1;1",
            "@type": "Interface",
            "contents": [{"@type": "Property", "name": "limit", "schema": "double", "writable": True}],
        },
    },
]
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def assert_error(body: Any, code: str | None = None) -> None:
    error = body["error"]
    assert isinstance(error["message"], str)
    assert re.fullmatch(r"[0-9a-f-]{36}", error["requestId"])
    assert ISO_TIME.match(error["time"])
    if code is not None:
        assert error["code"] == code


async def test_api_version_is_required(emulator: Emulator, rest: RestClient) -> None:
    url = f"{rest.base}/api/devices"
    headers = {"Authorization": rest.token}
    async with rest.session.get(url, headers=headers) as response:
        assert response.status == 400
        assert_error(await response.json())
    async with rest.session.get(url + "?api-version=1999-01-01", headers=headers) as response:
        assert response.status == 400
    async with rest.session.get(url + "?api-version=2022-07-31", headers=headers) as response:
        assert response.status == 200


async def test_authorization_is_checked(emulator: Emulator, rest: RestClient) -> None:
    assert rest.token.startswith("SharedAccessSignature ")
    async with rest.session.get(rest.url("/api/devices")) as response:
        assert response.status == 401
        assert_error(await response.json(), "Unauthorized")
    async with rest.session.get(rest.url("/api/devices"), headers={"Authorization": "wrong"}) as response:
        assert response.status == 401
    # The emulator's own endpoints are not IoT Central's: no token needed.
    async with rest.session.get(rest.url("/emulator/info")) as response:
        assert response.status == 200
        assert (await response.json())["apiToken"] == rest.token


async def test_auth_off(tmp_path: Path) -> None:
    async with (
        Emulator(emulator_config(tmp_path / "e", auth=False)) as emulator,
        aiohttp.ClientSession() as session,
    ):
        assert emulator.api_token() == ""
        assert (await rest_client(session, emulator).request("GET", "/api/devices"))[0] == 200


async def test_429_above_20_requests_per_second(emulator: Emulator, rest: RestClient) -> None:
    statuses = await asyncio.gather(*(rest.request("GET", "/api/devices") for _ in range(30)))
    throttled = [body for status, body in statuses if status == 429]
    assert len(throttled) >= 10 - 2  # at most 20 (a couple more if the burst spans two windows)
    assert_error(throttled[0], "TooManyRequests")


async def test_rate_limit_off(tmp_path: Path) -> None:
    async with (
        Emulator(emulator_config(tmp_path / "e", rest_rate_limit=0)) as emulator,
        aiohttp.ClientSession() as session,
    ):
        rest = rest_client(session, emulator)
        statuses = await asyncio.gather(*(rest.request("GET", "/api/devices") for _ in range(40)))
        assert {status for status, _ in statuses} == {200}


async def test_errors_carry_request_id_and_time(emulator: Emulator, rest: RestClient) -> None:
    status, body = await rest.request("GET", "/api/devices/nobody")
    assert status == 404
    assert_error(body, "NotFound")
    status, body = await rest.request("GET", "/api/nothing-here")
    assert status == 404
    assert_error(body)


async def test_device_templates_put_get_list(emulator: Emulator, rest: RestClient) -> None:
    body = device_template(MODEL_ID, THERMOSTAT)
    status, stored = await rest.request("PUT", f"/api/deviceTemplates/{MODEL_ID}", body)
    assert status == 200, stored
    assert stored["@id"] == MODEL_ID
    assert stored["@type"] == ["ModelDefinition", "DeviceModel"]
    assert stored["capabilityModel"]["contents"] == THERMOSTAT
    assert await rest.get(f"/api/deviceTemplates/{MODEL_ID}") == stored
    assert [t["@id"] for t in (await rest.get("/api/deviceTemplates"))["value"]] == [MODEL_ID]
    status, error = await rest.request("GET", "/api/deviceTemplates/dtmi:com:example:Other;1")
    assert status == 404
    assert_error(error)
    status, error = await rest.request("PUT", f"/api/deviceTemplates/{MODEL_ID}", {"capabilityModel": 1})
    assert status == 422
    assert_error(error)


async def test_etag_mismatch_is_412(emulator: Emulator, rest: RestClient) -> None:
    status, device = await rest.request("PUT", "/api/devices/etag-dev", {"displayName": "one"})
    assert status == 200
    status, error = await rest.request(
        "PATCH", "/api/devices/etag-dev", {"displayName": "two"}, headers={"If-Match": '"stale"'}
    )
    assert status == 412
    assert_error(error)
    status, updated = await rest.request(
        "PATCH", "/api/devices/etag-dev", {"displayName": "two"}, headers={"If-Match": device["etag"]}
    )
    assert status == 200
    assert updated["displayName"] == "two"
    assert updated["etag"] != device["etag"]


async def test_invalid_bodies_are_422(emulator: Emulator, rest: RestClient) -> None:
    await rest.request("PUT", "/api/devices/body-dev", {})
    for path, body in [
        ("/api/devices/body-dev", {"enabled": "yes"}),
        ("/api/devices/body-dev/properties", []),
        ("/api/devices/body-dev/properties", {"$version": 3}),
        ("/api/devices/body-dev/commands/reboot", {"responseTimeout": 4}),
        ("/api/devices/body-dev/commands/reboot", {"responseTimeout": 31}),
        ("/api/devices/body-dev/commands/reboot", {"responseTimeout": 10.5}),
        ("/api/devices/body-dev/commands/reboot", {"connectionTimeout": 31}),
        ("/api/devices/body-dev/commands/reboot", {"connectionTimeout": -1}),
    ]:
        method = "PATCH" if path.endswith(("properties", "body-dev")) else "POST"
        status, error = await rest.request(method, path, body)
        assert status == 422, (path, body, status, error)
        assert_error(error, "InvalidBody")


@pytest.fixture
async def thermostat(emulator: Emulator, rest: RestClient) -> tuple[str, str]:
    status, _ = await rest.request(
        "PUT", f"/api/deviceTemplates/{MODEL_ID}", device_template(MODEL_ID, THERMOSTAT)
    )
    assert status == 200
    return "shape-dev", await provision(emulator, "shape-dev")


async def test_properties_shapes(emulator: Emulator, rest: RestClient, thermostat: tuple[str, str]) -> None:
    device_id, hub = thermostat
    base = f"/api/devices/{device_id}"
    async with hub_client(emulator, hub, device_id) as client:
        await client.subscribe("$iothub/twin/res/#", qos=0)
        await client.publish(
            "$iothub/twin/PATCH/properties/reported/?$rid=1",
            json.dumps({"serial": "A-1", "thermostat1": {"__t": "c", "limit": 3.5}}),
        )
        await next_message(client)

        status, answer = await rest.request("PATCH", base + "/properties", {"targetTemp": 22})
        assert status == 202
        assert answer == {"$metadata": {"targetTemp": {"desiredValue": 22}}}
        status, answer = await rest.request("PATCH", base + "/properties", {"thermostat1": {"limit": 9}})
        assert status == 202
        assert answer == {"thermostat1": {"$metadata": {"limit": {"desiredValue": 9}}}}
        status, answer = await rest.request(
            "PATCH", base + "/components/thermostat1/properties", {"limit": 8}
        )
        assert status == 202
        assert answer == {"$metadata": {"limit": {"desiredValue": 8}}}

    view = await rest.get(base + "/properties")
    assert view["serial"] == "A-1"
    assert ISO_TIME.match(view["$metadata"]["serial"]["lastUpdateTime"])
    assert view["$metadata"]["targetTemp"] == {"desiredValue": 22, "desiredVersion": 2}
    component = view["thermostat1"]
    assert "__t" not in component
    assert component["limit"] == 3.5
    assert component["$metadata"]["limit"]["desiredValue"] == 8
    assert component["$metadata"]["limit"]["desiredVersion"] == 4  # per property: its own last write
    assert ISO_TIME.match(component["$metadata"]["limit"]["lastUpdateTime"])
    assert await rest.get(base + "/components/thermostat1/properties") == component

    # PUT replaces: what the body leaves out is no longer desired.
    status, answer = await rest.request("PUT", base + "/components/thermostat1/properties", {"limit": 1})
    assert status == 202
    assert answer == {"$metadata": {"limit": {"desiredValue": 1}}}
    assert (await rest.get(base + "/properties"))["$metadata"]["targetTemp"]["desiredValue"] == 22
    status, _ = await rest.request("PUT", base + "/properties", {"thermostat1": {"limit": 2}})
    assert status == 202
    after = await rest.get(base + "/properties")
    assert "targetTemp" not in after.get("$metadata", {})
    assert after["thermostat1"]["$metadata"]["limit"]["desiredValue"] == 2


async def test_components_listed_from_the_template(
    emulator: Emulator, rest: RestClient, thermostat: tuple[str, str]
) -> None:
    listed = await rest.get(f"/api/devices/{thermostat[0]}/components")
    assert listed == {
        "value": [{"@type": "Component", "name": "thermostat1", "schema": "dtmi:com:example:Thermostat1;1"}]
    }


async def test_command_result_and_history(
    emulator: Emulator, rest: RestClient, thermostat: tuple[str, str]
) -> None:
    device_id, hub = thermostat
    path = f"/api/devices/{device_id}/commands/reboot"
    assert await rest.get(path) == {"value": []}
    async with hub_client(emulator, hub, device_id) as client:
        await client.subscribe("$iothub/methods/POST/#", qos=0)

        async def answer() -> None:
            request = await next_message(client)
            rid = request.topic.value.rsplit("$rid=", 1)[1]
            await client.publish(f"$iothub/methods/res/200/?$rid={rid}", json.dumps({"ok": True}))

        answering = asyncio.create_task(answer())
        status, result = await rest.request("POST", path, {"request": 5, "responseTimeout": 10})
        await answering
    assert status == 201, result
    assert result["request"] == 5
    assert result["connectionTimeout"] == 0
    assert result["responseTimeout"] == 10
    assert result["responseCode"] == 200
    assert result["response"] == {"ok": True}
    assert (await rest.get(path))["value"] == [result]
