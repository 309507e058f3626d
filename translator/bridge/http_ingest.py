"""HTTP ingest → the CoAP devices' pipeline: the device's life (DPS with the request's model id, a session
from the pool), its `TelemetryDelivery` (direct publish, queue, outbox, replay, pacing) and the one promise
behind every acknowledgement (`translator.coap.sink.acknowledged`): the HTTP face answers 200 only for the
`Outcome` this returns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from translator.coap import Outcome
from translator.coap.sink import acknowledged
from translator.codec import TelemetryMessage
from translator.codec.transforms import Transforms
from translator.http.v1 import BridgeRequest

if TYPE_CHECKING:
    from translator.bridge.bridge import Bridge


class HttpIngest:
    """What the HTTP face delivers to (`translator.http.server.RequestSink`)."""

    def __init__(self, bridge: Bridge, transforms: Transforms | None = None) -> None:
        """`transforms`: `http.transforms`, run on every request's measurements (computed values, the
        device's enrichment from the devices CSV, drop, rename) by the device's life."""
        self.bridge = bridge
        self.transforms = transforms
        self._messages_in = bridge.metrics.messages_in.labels(source="http")

    async def deliver(self, request: BridgeRequest) -> Outcome:
        """Once the request's measurements are safe: PUBLISHED (PUBACKed) or KEPT (fsynced outbox). Raises
        BackPressure (outbox full, session closing) or NoCredentialsError like the CoAP path does."""
        self._messages_in.inc()
        life = await self.bridge.life_for(request.device_id, model_id=request.model_id)
        # One message, the measurements as they came, as the v1 bridge sent them; its timestamp becomes
        # iothub-creation-time-utc.
        measurements = request.measurements
        if self.transforms is not None:
            measurements = life.transformed(self.transforms, measurements)
        message = TelemetryMessage(None, measurements, request.timestamp)
        return acknowledged(await life.telemetry.send([message]))
