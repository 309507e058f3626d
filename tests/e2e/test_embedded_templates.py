"""The two-command demo: `serve` with its embedded emulator publishes the device template the translator
exports for a device's objects when the device first announces that model id — README step 2 done for the
user — so the device is assigned to it, as IoT Central assigns a device to the published template of its
model id (https://learn.microsoft.com/azure/iot-central/core/concepts-device-templates)."""

from __future__ import annotations

from pathlib import Path

from emulator.templates import from_interfaces
from tests.conftest import REPO
from tests.e2e.conftest import FAST_COAP, running_translator, session_connected, simulated
from translator.codec import export_template
from translator.lwm2m import Path as Lwm2mPath
from translator.settings import CodecSettings, EmulatorSettings, OperationsSettings, Settings

TEMPERATURE = Lwm2mPath.parse("/3303/0/5700")


async def test_embedded_emulator_assigns_the_exported_template(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path / "state",
        coap=FAST_COAP,
        emulator=EmulatorSettings(mqtt_port=0, http_port=0, https_port=0),
        codec=CodecSettings(directory=REPO / "codecs"),
        operations=OperationsSettings(port=0),
    )
    async with running_translator(settings) as translator:
        emulator = translator.emulator
        assert emulator is not None
        async with simulated(translator, "emb-1", values={TEMPERATURE: 21.5}):
            await session_connected(translator, "emb-1")
            device = emulator.application.devices["emb-1"]
            assert device.model_id.startswith("dtmi:")
            assert device.template == device.model_id
            codec = translator.catalog.by_model_id(device.model_id)
            assert codec is not None
            published = emulator.application.templates[device.model_id]
            assert published["capabilityModel"] == from_interfaces(export_template(codec))["capabilityModel"]
            # The demo's curl line carries what IoT Central requires of every call.
            banner = translator.how_to_try()
            assert f"Authorization: {emulator.api_token()}" in banner
            assert "api-version=2022-07-31" in banner
