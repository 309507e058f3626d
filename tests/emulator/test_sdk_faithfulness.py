"""Microsoft's own device SDK (azure-iot-device) against the emulator: the faithfulness check.

Each step the SDK takes is asserted through the emulator's REST API, the way a user would see it in
IoT Central. When a step fails because the emulator is wrong, fix the emulator, not this test.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from emulator.app import Emulator
from emulator.sas import derive_device_key
from tests.conftest import REPO, RestClient, device_template

pytestmark = pytest.mark.sdk

MODEL_ID = "dtmi:com:example:Thermostat;1"
STEP_TIMEOUT = 30.0


class SdkDevice:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        # Events the SDK's handler threads reported before the one a step waited for (a message delivered
        # at CONNACK can be reported before `connect()` returns): kept for the step that asks for them.
        self.unclaimed: list[dict[str, Any]] = []

    async def next_event(self, name: str) -> dict[str, Any]:
        for waiting in self.unclaimed:
            if waiting["event"] == name:
                self.unclaimed.remove(waiting)
                return waiting
        assert self.process.stdout is not None
        async with asyncio.timeout(STEP_TIMEOUT):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    stderr = await self.process.stderr.read() if self.process.stderr else b""
                    raise AssertionError(f"SDK exited before {name!r}: {stderr.decode()[-3000:]}")
                event: dict[str, Any] = json.loads(line)
                self.events.append(event)
                if event["event"] == name:
                    return event
                self.unclaimed.append(event)


async def wait_for(predicate_source: Any, *, limit: float = STEP_TIMEOUT) -> Any:
    async with asyncio.timeout(limit):
        while True:
            value = await predicate_source()
            if value:
                return value
            await asyncio.sleep(0.1)


async def _offline(emulator: Emulator, device_id: str) -> bool:
    return device_id not in emulator.hub.sessions


# A `urn:imei:` id as LwM2M fleets name devices: the SDK puts it raw into the username and every topic.
@pytest.mark.parametrize("device_id", ["sdk-thermostat-01", "urn:imei:359000000000042"])
async def test_sdk_device_life_against_emulator(
    emulator: Emulator, rest: RestClient, sdk_python: Path, device_id: str
) -> None:
    info = await rest.get("/emulator/info")
    # README step 2: the template is published before the device first connects.
    status, _ = await rest.request("PUT", f"/api/deviceTemplates/{MODEL_ID}", device_template(MODEL_ID))
    assert status == 200
    env = {
        **os.environ,
        "EMULATOR_MQTT_PORT": str(emulator.mqtt_port),
        "EMULATOR_CA": info["caPath"],
        "ID_SCOPE": info["idScope"],
        "DEVICE_ID": device_id,
        "DEVICE_KEY": derive_device_key(info["groupPrimaryKey"], device_id),
        "MODEL_ID": MODEL_ID,
    }
    process = await asyncio.create_subprocess_exec(
        str(sdk_python),
        str(REPO / "tests" / "sdk" / "sdk_device.py"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    sdk = SdkDevice(process)
    try:
        # DPS with a group-derived key and a model id.
        provisioned = await sdk.next_event("provisioned")
        assert provisioned["status"] == "assigned"
        assert provisioned["deviceId"] == device_id
        assert provisioned["hub"] in info["hubs"]
        device = await rest.get(f"/api/devices/{device_id}")
        assert device["provisioned"] is True
        assert device["template"] == MODEL_ID

        # Hub connection with the model id in the username.
        await sdk.next_event("connected")

        # Component telemetry with a custom property and the device's own timestamp.
        await sdk.next_event("telemetry-sent")
        log = await rest.get(f"/emulator/telemetry?deviceId={device_id}")
        [event] = log["value"]
        assert event["component"] == "thermostat1"
        assert event["body"] == {"temperature": 21.5}
        assert event["systemProperties"]["contentType"] == "application/json"
        assert event["systemProperties"]["contentEncoding"] == "utf-8"
        assert event["properties"]["sensor-kind"] == "ds18b20"
        assert event["properties"]["iothub-creation-time-utc"] == "2026-11-26T08:00:00.000Z"
        value = await rest.get(f"/api/devices/{device_id}/components/thermostat1/telemetry/temperature")
        assert value == {"timestamp": "2026-11-26T08:00:00.000Z", "value": 21.5}

        # Reported properties, root and component, visible to the SDK's own twin GET and to the API.
        reported = await sdk.next_event("reported")
        assert reported["twin"]["reported"]["manufacturer"] == "Contoso"
        properties = await rest.get(f"/api/devices/{device_id}/properties")
        assert properties["manufacturer"] == "Contoso"
        component = await rest.get(f"/api/devices/{device_id}/components/thermostat1/properties")
        assert component["maxTempSinceLastReboot"] == 30.5

        # Writable property: the API's PATCH reaches the SDK as a desired patch; its acknowledgement lands.
        status, _ = await rest.request("PATCH", f"/api/devices/{device_id}/properties", {"targetTemp": 22})
        assert status == 202
        desired = await sdk.next_event("desired")
        assert desired["patch"]["targetTemp"] == 22
        version = desired["patch"]["$version"]
        await sdk.next_event("acknowledged")

        async def acknowledged() -> Any:
            view = await rest.get(f"/api/devices/{device_id}/properties")
            meta = view.get("$metadata", {}).get("targetTemp", {})
            return meta if meta.get("ackVersion") == version else None

        meta = await wait_for(acknowledged)
        assert meta["ackCode"] == 200
        assert meta["desiredValue"] == 22

        # Command: a direct method answered by the SDK's handler.
        status, result = await rest.request(
            "POST", f"/api/devices/{device_id}/commands/reboot", {"request": {"delay": 5}}
        )
        assert status == 201, result
        assert result["responseCode"] == 200
        assert result["response"] == {"echo": {"delay": 5}, "ok": True}
        method = await sdk.next_event("method")
        assert method["name"] == "reboot"

        # Offline command: a cloud-to-device message carrying `method-name`.
        status, queued = await rest.request(
            "POST", f"/api/devices/{device_id}/commands/setMode?queued=true", {"request": {"mode": "eco"}}
        )
        assert status == 202, queued
        c2d = await sdk.next_event("c2d")
        assert json.loads(c2d["data"]) == {"mode": "eco"}
        assert c2d["properties"]["method-name"] == "setMode"
        assert c2d["messageId"] == queued["messageId"]

        async def c2d_completed() -> bool:
            current = emulator.application.device(device_id)
            return current is not None and not current.c2d

        assert await wait_for(c2d_completed)

        # Offline command while the device is away: the SDK connects with clean_session=0 and does not
        # subscribe again, so only the kept session can deliver it ("If set to false: the device will
        # receive messages that were sent to it while it was disconnected" —
        # https://learn.microsoft.com/dotnet/api/microsoft.azure.devices.client.iothubclientmqttsettings.cleansession).
        assert process.stdin is not None
        process.stdin.write(b"disconnect\n")
        await sdk.next_event("disconnected")
        await wait_for(lambda: _offline(emulator, device_id))
        current = emulator.application.devices[device_id]
        waiting = emulator.hub.enqueue_c2d(current, json.dumps({"mode": "away"}), {"method-name": "setMode"})
        process.stdin.write(b"connect\n")
        await sdk.next_event("connected")
        c2d = await sdk.next_event("c2d")
        assert json.loads(c2d["data"]) == {"mode": "away"}
        assert c2d["messageId"] == waiting.message_id
        assert await wait_for(c2d_completed)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(15):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
