"""Template assignment as IoT Central does it: a device is assigned, when it first connects, to the
published device template whose id is the model id it announces; otherwise it stays Unassigned, and later
connections do not change its template
(https://learn.microsoft.com/azure/iot-central/core/concepts-device-templates#assign-a-device-to-a-device-template;
templates are published with https://learn.microsoft.com/azure/iot-central/core/howto-manage-device-templates-with-rest-api).
"""

from __future__ import annotations

from emulator.app import Emulator
from tests.conftest import RestClient, device_template
from tests.emulator.clients import MODEL_ID, dps_client, hub_client, provision, register

OTHER_MODEL = "dtmi:com:example:Other;1"


async def _publish(rest: RestClient, model_id: str) -> None:
    status, body = await rest.request("PUT", f"/api/deviceTemplates/{model_id}", device_template(model_id))
    assert status == 200, body


async def test_unpublished_model_leaves_the_device_unassigned(emulator: Emulator, rest: RestClient) -> None:
    await provision(emulator, "tpl-unknown", MODEL_ID)
    device = await rest.get("/api/devices/tpl-unknown")
    assert device["provisioned"] is True
    assert "template" not in device  # Unassigned


async def test_published_model_is_assigned_at_first_connection(emulator: Emulator, rest: RestClient) -> None:
    await _publish(rest, MODEL_ID)
    await provision(emulator, "tpl-known", MODEL_ID)
    assert (await rest.get("/api/devices/tpl-known"))["template"] == MODEL_ID


async def test_assignment_is_not_redone_on_later_connections(emulator: Emulator, rest: RestClient) -> None:
    await _publish(rest, MODEL_ID)
    await _publish(rest, OTHER_MODEL)
    hub = await provision(emulator, "tpl-stable", MODEL_ID)
    # Another model id in a later hub CONNECT does not move the device to another template.
    async with hub_client(emulator, hub, "tpl-stable", model_id=OTHER_MODEL):
        pass
    assert (await rest.get("/api/devices/tpl-stable"))["template"] == MODEL_ID

    # Nor does publishing the template later assign a device that first connected Unassigned.
    hub = await provision(emulator, "tpl-late", "dtmi:com:example:Late;1")
    await _publish(rest, "dtmi:com:example:Late;1")
    async with hub_client(emulator, hub, "tpl-late", model_id="dtmi:com:example:Late;1"):
        pass
    assert "template" not in await rest.get("/api/devices/tpl-late")


async def test_model_id_from_the_hub_username_when_dps_had_none(emulator: Emulator, rest: RestClient) -> None:
    await _publish(rest, MODEL_ID)
    async with dps_client(emulator, "tpl-username") as client:
        response = await register(client, "tpl-username", model_id="")
    hub = response.body["registrationState"]["assignedHub"]
    assert "template" not in await rest.get("/api/devices/tpl-username")
    async with hub_client(emulator, hub, "tpl-username", model_id=MODEL_ID):
        pass
    assert (await rest.get("/api/devices/tpl-username"))["template"] == MODEL_ID


async def test_device_created_with_a_template_keeps_it(emulator: Emulator, rest: RestClient) -> None:
    await _publish(rest, OTHER_MODEL)
    status, _ = await rest.request("PUT", "/api/devices/tpl-made", {"template": OTHER_MODEL})
    assert status == 200
    await provision(emulator, "tpl-made", MODEL_ID)
    assert (await rest.get("/api/devices/tpl-made"))["template"] == OTHER_MODEL
