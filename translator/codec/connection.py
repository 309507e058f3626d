"""A codec file's `connection` (in `[template]`): "persistent" (default) or "ephemeral".

An ephemeral device sends telemetry over a short connection and holds no session (README: ephemeral
devices). IoT Central's device guide says ephemeral connections are not for command and control
(https://learn.microsoft.com/azure/iot-central/core/overview-iot-central-developer), and a device's
properties live in its twin, which only a held MQTT session reaches. So a codec file that declares itself
ephemeral may declare telemetry only: a command or property in it (an enrichment sent as a property too)
is refused at load time, naming the file and the entry — its exported template then offers nothing the
device cannot honour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.codec.errors import CodecFileError
from translator.codec.spec import CONNECTIONS, Codec, Connection
from translator.codec.transforms import EnrichmentKind


def parse_connection(source: str, template: Mapping[str, Any]) -> Connection:
    value = template.get("connection", "persistent")
    for connection in CONNECTIONS:
        if value == connection:
            return connection
    raise CodecFileError(source, "template.connection", f"{value!r} is not one of {', '.join(CONNECTIONS)}")


def check_connection(codec: Codec) -> None:
    if codec.connection != "ephemeral":
        return
    if codec.commands:
        raise CodecFileError(
            codec.source,
            f"command {codec.commands[0].name!r}",
            "an ephemeral device takes no command (no session to receive it): remove it, or use "
            'connection = "persistent"',
        )
    if codec.properties:
        raise CodecFileError(
            codec.source,
            f"property {codec.properties[0].name!r}",
            "an ephemeral device reports and takes no property (they live in the twin, which needs a held "
            'session): send it as telemetry, or use connection = "persistent"',
        )
    for index, enrichment in enumerate(codec.transforms.enrichments):
        if enrichment.kind is EnrichmentKind.PROPERTY:
            raise CodecFileError(
                codec.source,
                f"enrichment[{index}].as",
                f"enrichment {enrichment.name!r} is a property, which an ephemeral device cannot report (no "
                'twin without a held session): as = "telemetry" adds it to each message instead',
            )
