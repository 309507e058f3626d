"""Runs inside the azure-iot-device virtual environment (it pins paho-mqtt < 2), as a subprocess of a test.

Drives Microsoft's SDK through one device's life against the emulator and reports each step as one JSON line
on stdout; the test checks every step through the emulator's REST API. Lines on stdin ("disconnect",
"connect") steer the device afterwards; it exits when stdin closes.

Arguments come as environment variables: EMULATOR_MQTT_PORT, EMULATOR_CA, ID_SCOPE, DEVICE_ID, DEVICE_KEY,
MODEL_ID.
"""

import json
import os
import sys
import threading

import paho.mqtt.client as paho

_real_connect = paho.Client.connect


def _connect_to_emulator(self, host, port=1883, keepalive=60, bind_address="", *args, **kwargs):
    # The SDK always dials 8883; the emulator listens on a free port chosen by the test.
    if port == 8883:
        port = int(os.environ["EMULATOR_MQTT_PORT"])
    return _real_connect(self, host, port, keepalive, bind_address, *args, **kwargs)


paho.Client.connect = _connect_to_emulator

from azure.iot.device import (  # noqa: E402
    IoTHubDeviceClient,
    Message,
    MethodResponse,
    ProvisioningDeviceClient,
)

_print_lock = threading.Lock()


def report(event, **fields):
    with _print_lock:
        print(json.dumps({"event": event, **fields}), flush=True)


def main():
    with open(os.environ["EMULATOR_CA"]) as ca_file:
        ca_pem = ca_file.read()
    device_id = os.environ["DEVICE_ID"]
    model_id = os.environ["MODEL_ID"]

    provisioning = ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host="localhost",
        registration_id=device_id,
        id_scope=os.environ["ID_SCOPE"],
        symmetric_key=os.environ["DEVICE_KEY"],
        server_verification_cert=ca_pem,
    )
    provisioning.provisioning_payload = {"modelId": model_id}
    result = provisioning.register()
    state = result.registration_state
    report(
        "provisioned",
        status=result.status,
        hub=state.assigned_hub,
        deviceId=state.device_id,
        substatus=state.sub_status,
    )
    if result.status != "assigned":
        return 1

    client = IoTHubDeviceClient.create_from_symmetric_key(
        symmetric_key=os.environ["DEVICE_KEY"],
        hostname=state.assigned_hub,
        gateway_hostname="localhost",
        device_id=state.device_id,
        server_verification_cert=ca_pem,
        product_info=model_id,
    )

    def on_desired(patch):
        report("desired", patch=patch)
        version = patch.get("$version")
        ack = {
            name: {"value": value, "ac": 200, "av": version, "ad": "completed"}
            for name, value in patch.items()
            if not name.startswith("$")
        }
        client.patch_twin_reported_properties(ack)
        report("acknowledged", version=version)

    def on_method(request):
        report("method", name=request.name, payload=request.payload)
        response = {"echo": request.payload, "ok": True}
        client.send_method_response(MethodResponse.create_from_method_request(request, 200, response))

    def on_message(message):
        report(
            "c2d",
            data=message.data.decode(),
            properties=message.custom_properties,
            messageId=message.message_id,
        )

    client.on_twin_desired_properties_patch_received = on_desired
    client.on_method_request_received = on_method
    client.on_message_received = on_message
    client.connect()
    report("connected")

    message = Message(json.dumps({"temperature": 21.5}))
    message.content_type = "application/json"
    message.content_encoding = "utf-8"
    message.custom_properties["$.sub"] = "thermostat1"
    message.custom_properties["iothub-creation-time-utc"] = "2026-11-26T08:00:00.000Z"
    message.custom_properties["sensor-kind"] = "ds18b20"
    client.send_message(message)
    report("telemetry-sent")

    client.patch_twin_reported_properties(
        {"manufacturer": "Contoso", "thermostat1": {"__t": "c", "maxTempSinceLastReboot": 30.5}}
    )
    twin = client.get_twin()
    report("reported", twin=twin)

    # The test steers the rest line by line, and closes stdin when it has checked everything.
    for line in sys.stdin:
        if line.strip() == "disconnect":
            client.disconnect()
            report("disconnected")
        elif line.strip() == "connect":
            client.connect()
            report("connected")
    client.shutdown()
    report("closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
