"""The translator as an IoT Central gateway end to end (issue 19 §1): with `[gateway] enabled = true` it is a
device of its own (its template published, README step 2) and every LwM2M device registers downstream of it
through the DPS payload's `iotcGateway` — the relation IoT Central shows over REST
(https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/list-relationships). Downstream
devices keep their own identity and session; the gateway sends health telemetry from the translator's own
figures, reports its version and ports, and its commands act on the running translator."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    eventually,
    log_position,
    send_at,
    session_connected,
    simulated,
    telemetry_matching,
    translator_settings,
)
from translator.gateway.model import gateway_template
from translator.gateway.settings import DEFAULT_MODEL_ID, GatewaySettings
from translator.iotc.client.session import SessionState
from translator.lwm2m import Path as Lwm2mPath
from translator.lwm2m import Value
from translator.serve import Translator

GATEWAY = "gw-e2e"
TEMPERATURE = Lwm2mPath(3303, 0, 5700)
SENSOR: dict[Lwm2mPath, Value] = {TEMPERATURE: 21.5, Lwm2mPath(3303, 0, 5701): "Cel"}


async def _relations(rest: RestClient, device_id: str) -> set[tuple[str, str]]:
    listed = await rest.get(f"/api/devices/{device_id}/relationships")
    return {(r["source"], r["target"]) for r in listed["value"]}


async def test_gateway_relation_health_and_commands(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    status, _ = await rest.request(
        "PUT", f"/api/deviceTemplates/{DEFAULT_MODEL_ID}", gateway_template(DEFAULT_MODEL_ID)
    )
    assert status == 200
    settings = replace(
        translator_settings(emulator, tmp_path / "translator"),
        gateway=GatewaySettings(enabled=True, device_id=GATEWAY, telemetry_interval=0.5),
    )
    async with (
        Translator(settings) as translator,
        simulated(translator, "gwd-1", values=SENSOR) as first,
        simulated(translator, "gwd-2", values=SENSOR),
    ):
        for device_id in (GATEWAY, "gwd-1", "gwd-2"):
            await session_connected(translator, device_id)

        # The relation, as IoT Central's REST API lists it from both ends.
        async def related() -> bool:
            return await _relations(rest, GATEWAY) == {(GATEWAY, "gwd-1"), (GATEWAY, "gwd-2")}

        await eventually(related, what="the gateway's relationships")
        assert await _relations(rest, "gwd-1") == {(GATEWAY, "gwd-1")}
        gateway = await rest.get(f"/api/devices/{GATEWAY}")
        assert gateway["template"] == DEFAULT_MODEL_ID

        # Downstream devices keep their own identity: a device's telemetry arrives as that device's.
        start = await log_position(rest)
        await send_at(first, [(TEMPERATURE, 1234.0, time.time())])
        own = await telemetry_matching(
            rest, "gwd-1", lambda e: e["body"].get("temperature") == 1234.0, 1, after=start
        )
        assert own[0]["deviceId"] == "gwd-1"

        # Health telemetry from the translator's own figures: its two devices, three sessions connected (its
        # own and theirs), nothing waiting, nothing in the outbox.
        def healthy(event: dict[str, Any]) -> bool:
            body = event["body"]
            return (body.get("devices"), body.get("registrations"), body.get("sessionsConnected")) == (
                2,
                2,
                3,
            )

        health = (await telemetry_matching(rest, GATEWAY, healthy, 2))[-1]["body"]
        assert health["sessionsWaitingForApproval"] == 0
        assert health["outboxDepth"] >= 0
        assert health["messagesPerSecond"] >= 0  # the second message on: a rate over the interval

        # Its properties: the version and the ports it listens on.
        assert translator.coap is not None and translator.ops is not None
        operations = translator.ops.port

        async def reported() -> dict[str, Any]:
            properties: dict[str, Any] = await rest.get(f"/api/devices/{GATEWAY}/properties")
            assert properties.get("listeningPorts", {}).get("operations") == operations
            return properties

        properties = await eventually(reported, what="the gateway's properties")
        assert properties["version"]
        assert properties["listeningPorts"]["coap"] == translator.coap.port

        # disconnectDevice drops the device's session (its next message connects it again) ...
        assert translator.pool is not None
        dropped = translator.pool.get("gwd-2")
        assert dropped is not None
        status, answer = await rest.request(
            "POST", f"/api/devices/{GATEWAY}/commands/disconnectDevice", {"request": "gwd-2"}
        )
        assert status == 201, answer
        assert (answer["responseCode"], answer["response"]) == (
            200,
            {"deviceId": "gwd-2", "disconnected": True},
        )
        assert dropped.status.state is SessionState.CLOSED
        assert translator.pool.get("gwd-2") is not dropped
        # ... and a device it does not know is answered 404.
        status, answer = await rest.request(
            "POST", f"/api/devices/{GATEWAY}/commands/disconnectDevice", {"request": "nobody"}
        )
        assert (status, answer["responseCode"]) == (201, 404)

        # replayOutbox tells every device's delivery to replay now.
        status, answer = await rest.request("POST", f"/api/devices/{GATEWAY}/commands/replayOutbox", {})
        assert status == 201, answer
        assert answer["responseCode"] == 200
        assert answer["response"]["devices"] >= 1  # gwd-1, and gwd-2 if a message of it came meanwhile
        assert answer["response"]["messages"] >= 0


async def test_a_device_assigned_before_the_gateway_was_enabled_is_attached_to_it(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    # Its DPS assignment is cached from a run without the gateway, and a cached assignment skips DPS; but
    # only a registration whose payload names the gateway makes IoT Central attach the device
    # (https://learn.microsoft.com/azure/iot-central/core/tutorial-define-gateway-device-type
    # #connect-real-downstream-devices), so the translator registers it again once.
    status, _ = await rest.request(
        "PUT", f"/api/deviceTemplates/{DEFAULT_MODEL_ID}", gateway_template(DEFAULT_MODEL_ID)
    )
    assert status == 200
    endpoint = "urn:imei:356938035643809"
    plain = translator_settings(emulator, tmp_path / "translator")
    async with Translator(plain) as translator, simulated(translator, endpoint, values=SENSOR):
        await session_connected(translator, endpoint)
    assert await _relations(rest, endpoint) == set()

    as_gateway = replace(plain, gateway=GatewaySettings(enabled=True, device_id=GATEWAY))
    async with Translator(as_gateway) as translator, simulated(translator, endpoint, values=SENSOR):
        await session_connected(translator, endpoint)

        async def attached() -> bool:
            return await _relations(rest, endpoint) == {(GATEWAY, endpoint)}

        await eventually(attached, what="the device's relation to the gateway")
