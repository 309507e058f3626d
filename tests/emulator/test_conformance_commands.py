"""Offline commands as IoT Central runs them: "By default, commands expect a device to be connected and
fail if the device can't be reached. If you select the Queue if offline option in the device template UI a
command can be queued until a device comes online" — the template's `durable` — and reaches the device as a
cloud-to-device message with the `method-name` property
(https://learn.microsoft.com/azure/iot-central/core/howto-use-commands#offline-commands).
The message body is the request value as IoT Central sends it: a string raw, other values as JSON, nothing
for a command without request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient, device_template
from tests.emulator.clients import MODEL_ID, PUBLISH, provision, puback_packet, raw_hub

TEMPLATE: list[dict[str, Any]] = [
    {"@type": "Command", "name": "setMode", "durable": True, "request": {"name": "mode", "schema": "string"}},
    {"@type": "Command", "name": "configure", "durable": True, "request": {"name": "c", "schema": "integer"}},
    {"@type": "Command", "name": "wipe", "durable": True},
    {"@type": "Command", "name": "reboot"},
    {
        "@type": "Component",
        "name": "th1",
        "schema": {
            "@id": "dtmi:com:example:Th;1",
            "@type": "Interface",
            "contents": [{"@type": "Command", "name": "calibrate", "durable": True}],
        },
    },
]
DEVICE = "cmd-offline-01"


@pytest.fixture
async def hub(emulator: Emulator, rest: RestClient) -> str:
    status, _ = await rest.request(
        "PUT", f"/api/deviceTemplates/{MODEL_ID}", device_template(MODEL_ID, TEMPLATE)
    )
    assert status == 200
    return await provision(emulator, DEVICE)


async def _delivered(emulator: Emulator, hub: str, count: int) -> list[tuple[str, bytes]]:
    client = await raw_hub(emulator, hub, DEVICE)
    try:
        await client.subscribe([(f"devices/{DEVICE}/messages/devicebound/#", 1)])
        messages = []
        for _ in range(count):
            packet = await client.expect(PUBLISH)
            await client.send(puback_packet(packet.packet_id))
            messages.append((packet.topic, packet.payload))
        return messages
    finally:
        await client.close()


async def test_durable_commands_are_queued_for_an_offline_device(
    emulator: Emulator, rest: RestClient, hub: str
) -> None:
    base = f"/api/devices/{DEVICE}"
    for path, body in [
        ("/commands/setMode", {"request": "eco"}),
        ("/commands/configure", {"request": {"c": 3}}),
        ("/commands/wipe", {}),
        ("/components/th1/commands/calibrate", {}),
    ]:
        status, queued = await rest.request("POST", base + path, body)
        assert status == 202, (path, queued)
        assert queued["queued"] is True
    delivered = await _delivered(emulator, hub, 4)
    names = [
        dict(item.split("=", 1) for item in topic.rsplit("/", 1)[1].split("&"))["method-name"]
        for topic, _ in delivered
    ]
    assert names == ["setMode", "configure", "wipe", "th1%2Acalibrate"]
    assert [payload for _, payload in delivered] == [b"eco", json.dumps({"c": 3}).encode(), b"", b""]


async def test_a_command_without_queue_if_offline_fails_offline(
    emulator: Emulator, rest: RestClient, hub: str
) -> None:
    status, error = await rest.request("POST", f"/api/devices/{DEVICE}/commands/reboot", {})
    assert status == 408, error
    assert emulator.application.devices[DEVICE].c2d == []


async def test_queued_alias_is_the_emulators_own(emulator: Emulator, rest: RestClient, hub: str) -> None:
    # `?queued=true` is not IoT Central's: it forces the queued form even for a command without the option.
    status, queued = await rest.request("POST", f"/api/devices/{DEVICE}/commands/reboot?queued=true", {})
    assert status == 202, queued
    [(topic, payload)] = await _delivered(emulator, hub, 1)
    assert "method-name=reboot" in topic
    assert payload == b""


async def test_durable_command_to_an_online_device_is_a_direct_method(
    emulator: Emulator, rest: RestClient, hub: str
) -> None:
    client = await raw_hub(emulator, hub, DEVICE)
    try:
        await client.subscribe([("$iothub/methods/POST/#", 0)])
        status, _ = await rest.request(
            "POST", f"/api/devices/{DEVICE}/commands/setMode", {"request": "eco", "responseTimeout": 5}
        )
        request = await client.expect(PUBLISH)
        assert request.topic.startswith("$iothub/methods/POST/setMode/")
        assert json.loads(request.payload) == "eco"
        assert status == 408  # this device never answered
    finally:
        await client.close()
    assert emulator.application.devices[DEVICE].c2d == []
