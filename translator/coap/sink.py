"""The one callback interface the CoAP face delivers to (the bridge implements it).

    class Bridge:
        def on_registered(self, registration): ...          # new or re-registration (observations reset)
        def on_updated(self, registration): ...
        def on_deregistered(self, registration, reason): ...
        def on_records(self, device, records, source, *, confirmable): ...  # -> None or an awaitable

Delivery guarantee: a *confirmable* message carrying telemetry is acknowledged only after the awaitable
returned by `on_records` completes (its data is safe: published with QoS 1 and acknowledged, or written
to the outbox). If it raises `BackPressure`, the device gets 5.03 with Max-Age = retry_after; any other
error, or no completion within the server's `sink_timeout`, is answered 5.03/5.00 and the device retries.
Returning None means "safe already". For non-confirmable messages the result is not waited for.

Performance: `on_records` runs on the hot path for every message. Return an `asyncio.Future` (or None)
rather than a coroutine when you can: a coroutine costs a task per message.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Sequence
from typing import NamedTuple, Protocol

from translator.coap.identity import DeviceIdentity
from translator.coap.registration import Registration
from translator.lwm2m import Record, Value


class TelemetrySource(enum.Enum):
    NOTIFY = "notify"  # an Observe notification (or the first response of an observation)
    SEND = "send"  # LwM2M Send, POST /dp
    INGEST = "ingest"  # plain CBOR, POST /ingest


class DeregisterReason(enum.Enum):
    DEREGISTERED = "deregistered"  # the client sent De-register
    EXPIRED = "expired"  # lifetime + grace passed without Update
    REPLACED = "replaced"  # not sent as an event: a re-register arrives as on_registered
    SHUTDOWN = "shutdown"  # the server stops


class NamedRecord(NamedTuple):
    """A value from a sensor that does not speak LwM2M (plain CBOR ingest): a free-form name."""

    name: str
    value: Value
    time: float | None = None


TelemetryRecord = Record | NamedRecord


class TelemetrySink(Protocol):
    def on_registered(self, registration: Registration) -> None:
        """A client registered. Also called for a re-registration of a known endpoint: its previous
        registration was replaced, its observations cancelled and must be set up again."""
        ...

    def on_updated(self, registration: Registration) -> None: ...

    def on_deregistered(self, registration: Registration, reason: DeregisterReason) -> None: ...

    def on_records(
        self,
        device: DeviceIdentity,
        records: Sequence[TelemetryRecord],
        source: TelemetrySource,
        *,
        confirmable: bool,
    ) -> Awaitable[None] | None:
        """Records from a device. `device` is registered unless `source` is INGEST (plain CBOR
        sensors need no registration). Return None, or an awaitable that completes when safe."""
        ...


class NullSink:
    """A sink that accepts and drops everything (tests, the simulator's own server)."""

    def on_registered(self, registration: Registration) -> None:
        return None

    def on_updated(self, registration: Registration) -> None:
        return None

    def on_deregistered(self, registration: Registration, reason: DeregisterReason) -> None:
        return None

    def on_records(
        self,
        device: DeviceIdentity,
        records: Sequence[TelemetryRecord],
        source: TelemetrySource,
        *,
        confirmable: bool,
    ) -> Awaitable[None] | None:
        return None
