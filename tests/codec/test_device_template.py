"""The device template JSON IoT Central's REST API publishes (PUT /api/deviceTemplates/{id}), and durable
("Queue if offline") commands for sleeping devices.
https://learn.microsoft.com/azure/iot-central/core/howto-manage-device-templates-with-rest-api
https://learn.microsoft.com/azure/iot-central/core/howto-use-commands#offline-commands"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

from tests.codec.dtdl_parser import validate
from translator.codec import default_codec, device_template, dtdl, export_template
from translator.lwm2m import ObjectRegistry, Path


def _commands(model: dict[str, Any]) -> list[dict[str, Any]]:
    found = [c for c in model["contents"] if c["@type"] == "Command"]
    for component in (c for c in model["contents"] if c["@type"] == "Component"):
        found += _commands(component["schema"])
    return found


def test_the_template_inlines_each_component_interface(registry: ObjectRegistry) -> None:
    codec = default_codec([Path(3, 0), Path(3303, 0), Path(6, 0)], registry)
    template = device_template(codec)
    assert template["@id"] == codec.model_id
    assert template["@type"] == ["ModelDefinition", "DeviceModel"]
    assert template["@context"] == [dtdl.IOTC_CONTEXT, dtdl.CONTEXT]
    model = template["capabilityModel"]
    interfaces = {i["@id"]: i for i in export_template(codec)}
    assert model["@id"] == codec.model_id and "@context" not in model
    for component in (c for c in model["contents"] if c["@type"] == "Component"):
        inline = component["schema"]
        assert inline["contents"] == interfaces[inline["@id"]]["contents"]
    assert _commands(model) and not any("durable" in c for c in _commands(model))


def test_a_sleeping_device_gets_durable_commands(registry: ObjectRegistry) -> None:
    codec = default_codec([Path(3, 0), Path(3303, 0)], registry)
    commands = _commands(device_template(codec, queue_mode=True)["capabilityModel"])
    assert commands and all(c["durable"] is True for c in commands)


def test_microsoft_parser_accepts_the_capability_model(dtdl_parser: FsPath, registry: ObjectRegistry) -> None:
    """Without IoT Central's own data (durable), the capability model is DTDL v2 with inline interfaces."""
    codec = default_codec([Path(3, 0), Path(3303, 0), Path(3303, 1), Path(6, 0)], registry)
    model = device_template(codec)["capabilityModel"]
    results = validate(
        {"capability model": [{"@context": [dtdl.CONTEXT, dtdl.IOTC_CONTEXT], **model}]}, dtdl_parser
    )
    assert results == {"capability model": []}
