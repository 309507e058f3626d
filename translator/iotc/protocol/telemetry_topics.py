"""One device's telemetry topics, built fast: sans I/O.

The fixed part of a telemetry topic (device id, component, content type, custom properties) is encoded once
per (component, custom properties) and kept, because percent-encoding the whole property bag per message was
a quarter of the publish cost; only the creation time is appended per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote

from translator.iotc.protocol.errors import PropertyBagError
from translator.iotc.protocol.property_bag import CREATION_TIME, PropertyBag, format_creation_time
from translator.iotc.protocol.topics import Telemetry

# A device has a handful of components; custom properties that vary per message are not worth keeping.
KEPT = 16


class TelemetryTopics:
    __slots__ = ("_bases", "device_id")

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self._bases: dict[tuple[str | None, tuple[tuple[str, str], ...]], str] = {}

    def topic(
        self,
        component: str | None = None,
        creation_time: datetime | None = None,
        custom: Mapping[str, str] | None = None,
    ) -> str:
        key = (component, tuple(custom.items()) if custom else ())
        base = self._bases.get(key)
        if base is None:
            base = Telemetry(self.device_id, PropertyBag.telemetry(component=component, custom=custom)).topic
            if len(self._bases) < KEPT:
                self._bases[key] = base
        if creation_time is None:
            return base
        if custom and CREATION_TIME in custom:
            raise PropertyBagError(f"{CREATION_TIME!r} given both as creation_time and as a custom property")
        return f"{base}&{CREATION_TIME}={quote(format_creation_time(creation_time), safe='')}"
