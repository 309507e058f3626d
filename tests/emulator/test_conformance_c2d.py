"""Cloud-to-device messages and MQTT persistent sessions, as IoT Hub documents them.

IoT Hub keeps a device's subscriptions when it connects with clean_session=0, and "If set to false: the
device will receive messages that were sent to it while it was disconnected" —
https://learn.microsoft.com/dotnet/api/microsoft.azure.devices.client.iothubclientmqttsettings.cleansession
(and https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub, "Receiving cloud-to-device messages").
"""

from __future__ import annotations

import json

from emulator.app import Emulator
from tests.emulator.clients import (
    PUBLISH,
    RawClient,
    hub_token,
    hub_username,
    primary_key,
    provision,
    puback_packet,
)

DEVICE = "c2d-persistent-01"


async def _connect(emulator: Emulator, hub: str, *, clean_session: bool) -> tuple[RawClient, bool]:
    client = await RawClient.open(emulator, server_hostname=hub)
    token = hub_token(hub, DEVICE, primary_key(emulator, DEVICE))
    code, present = await client.connect(
        DEVICE, hub_username(hub, DEVICE), token, clean_session=clean_session
    )
    assert code == 0
    return client, present


async def test_queued_while_away_delivered_on_persistent_reconnect(emulator: Emulator) -> None:
    hub = await provision(emulator, DEVICE)
    client, _ = await _connect(emulator, hub, clean_session=False)
    try:
        assert await client.subscribe([(f"devices/{DEVICE}/messages/devicebound/#", 1)]) == [1]
    finally:
        await client.close()
    device = emulator.application.devices[DEVICE]
    message = emulator.hub.enqueue_c2d(device, json.dumps({"mode": "eco"}), {"method-name": "setMode"})

    client, present = await _connect(emulator, hub, clean_session=False)
    try:
        assert present
        # No SUBSCRIBE on this connection: the kept subscription delivers the message.
        delivered = await client.expect(PUBLISH)
        assert delivered.qos == 1
        assert f"%24.mid={message.message_id}" in delivered.topic
        assert json.loads(delivered.payload) == {"mode": "eco"}
        await client.send(puback_packet(delivered.packet_id))
    finally:
        await client.close()


async def test_clean_session_forgets_the_subscription(emulator: Emulator) -> None:
    hub = await provision(emulator, DEVICE)
    client, _ = await _connect(emulator, hub, clean_session=False)
    try:
        await client.subscribe([(f"devices/{DEVICE}/messages/devicebound/#", 1)])
    finally:
        await client.close()
    device = emulator.application.devices[DEVICE]
    emulator.hub.enqueue_c2d(device, "{}", {})
    client, present = await _connect(emulator, hub, clean_session=True)
    try:
        assert not present
        # Nothing arrives until the device subscribes again; then the message that waited does.
        assert await client.subscribe([(f"devices/{DEVICE}/messages/devicebound/#", 1)]) == [1]
        delivered = await client.expect(PUBLISH)
        assert delivered.payload == b"{}"
    finally:
        await client.close()
