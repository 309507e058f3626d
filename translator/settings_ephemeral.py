"""The `[ephemeral]` settings section: how ephemeral devices' telemetry goes out (README: ephemeral devices).

A device is ephemeral when its devices-CSV row says `connection = ephemeral`, or else its codec file does
(`[template] connection = "ephemeral"`); devices of the HTTP Device Bridge drop-in take `http_connection`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from translator.settings_types import SECTION, RemotePort


@dataclass(frozen=True, slots=True, config=SECTION)
class EphemeralSection:
    transport: Literal["https", "mqtt"] = Field(
        default="https",
        description='"https": IoT Hub\'s HTTPS device API, one request per message; "mqtt": a short clean '
        "MQTT connection per batch (docs/performance.md: the cheaper per message)",
    )
    hub_https_port: RemotePort = Field(
        default=443, description="IoT Hub's HTTPS port (the emulator's https_port)"
    )
    linger: float = Field(
        default=0.2,
        ge=0,
        le=60,
        description="seconds a batch's connection stays open after its last message (the rest of the batch, "
        "an outbox replay)",
    )
    http_connection: Literal["persistent", "ephemeral"] = Field(
        default="persistent",
        description="the HTTP Device Bridge drop-in's devices, unless their devices-CSV row says otherwise",
    )
