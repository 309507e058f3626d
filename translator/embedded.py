"""The built-in IoT Central emulator `serve` starts when no IoT Central is configured (the embedded default),
and the IoT Central settings that point the translator at it. `serve --workers N` starts it once, in the
supervisor, and hands every worker these settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from translator.codec import export_template
from translator.gateway.model import gateway_template

if TYPE_CHECKING:
    from emulator.app import Emulator
    from translator.bridge import CodecCatalog
    from translator.settings import IotcSettings, Settings


async def start_emulator(
    settings: Settings,
    catalog: CodecCatalog,
    elsewhere: Mapping[str, list[dict[str, Any]]] | None = None,
) -> tuple[Emulator, IotcSettings]:
    """The emulator, started, and `settings.iotc` pointed at it. `elsewhere`: the exported templates (DTDL
    interfaces by model id) of codecs built in other processes — the workers of `serve --workers`."""
    from emulator.app import Emulator
    from emulator.config import EmulatorConfig

    def template_for(model_id: str) -> dict[str, Any] | None:
        """README step 2 done for the user of the embedded emulator: the device template of a model id a
        device announces, exported from the codec the translator gave that device."""
        from emulator.templates import from_interfaces

        gateway = settings.gateway
        if gateway.enabled and model_id == gateway.model_id:
            return gateway_template(model_id)  # the translator's own gateway device (translator/gateway)
        codec = catalog.by_model_id(model_id)
        if codec is not None:
            return from_interfaces(export_template(codec))
        interfaces = (elsewhere or {}).get(model_id)
        return None if interfaces is None else from_interfaces(interfaces)

    chosen = settings.emulator
    emulator = Emulator(
        EmulatorConfig(
            state_dir=settings.state_dir / "emulator",
            host=chosen.host,
            mqtt_port=chosen.mqtt_port,
            http_port=chosen.http_port,
            https_port=chosen.https_port,
        ).validated(),
        template_source=template_for,
    )
    await emulator.start()
    assert emulator.tls is not None
    info = emulator.info()
    return emulator, replace(
        settings.iotc,
        id_scope=info["idScope"],
        group_key=info["groupPrimaryKey"],
        dps_host=chosen.host,
        dps_port=emulator.mqtt_port,
        hub_port=emulator.mqtt_port,
        ca_file=emulator.tls.ca_path,
        gateway_host=chosen.host,
    )


def emulator_lines(emulator: Emulator, coap_port: int) -> list[str]:
    """`make run`'s "Try it" lines for the embedded emulator."""
    info = emulator.info()
    rest = f"http://{info['host']}:{info['httpPort']}/api/devices"
    version = f"api-version={info['apiVersion']}"
    auth = f"-H 'Authorization: {info['apiToken']}' " if info["apiToken"] else ""
    telemetry = f"{rest}/demo1/components/temperature_0/telemetry/temperature?{version}"
    return [
        f"  IoT Central:       the built-in emulator, REST on {rest}?{version}",
        "Try it:",
        f"  coap-client-notls -p 40001 -m post -t 40 -e '</3303/0>' 'coap://127.0.0.1:{coap_port}/rd?ep=demo1&lt=300&lwm2m=1.1'",
        "  coap-client-notls -p 40001 -m post -t 110 -e "
        + """'[{"bn":"/3303/0/","n":"5700","v":21.5}]' """
        + f"coap://127.0.0.1:{coap_port}/dp",
        f"  curl {auth}'{telemetry}'",
    ]
