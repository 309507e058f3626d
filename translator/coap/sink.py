"""The one callback interface the CoAP face delivers to (the bridge implements it).

    class Bridge:
        def on_registered(self, registration): ...          # new or re-registration (observations reset)
        def on_updated(self, registration): ...             # an Update, or a new address (NAT rebinding)
        def on_deregistered(self, registration, reason): ...
        def on_records(self, device, records, source, *, confirmable): ...  # -> Outcome or Awaitable[Outcome]

Delivery guarantee, decided in one place: a *confirmable* message carrying data is acknowledged (2.04, or
the empty ACK of a notification) only when `on_records` yields an `Outcome`, directly or through its
awaitable, and `acknowledged()` below is the only function of the CoAP face that turns a sink's answer into
that acknowledgement. An `Outcome` is a statement of fact by the sink: PUBLISHED (QoS 1, PUBACKed by the
hub), KEPT (in the fsynced outbox), or NOTHING (a deliberate decision that the records carry nothing to
send, e.g. resources the codec maps to no telemetry). Anything else — None, a forgotten return, an
awaitable that yields something else — is a broken promise: answered 5.00, never 2.04. If the sink raises
`BackPressure` the device gets 5.03 with Max-Age = retry_after; any other error, or no completion within the
server's `sink_timeout`, is answered 5.03/5.00 and the device retries. For non-confirmable messages the
result is not waited for (best effort).

The bridge keeps that promise through every start-up state: a device whose codec is not known yet (resumed
after a restart for its outbox, before it registers again) gets it from its current registration before
its records are mapped, or its records are refused with 5.03 + Max-Age (translator/bridge/bridge.py,
translator/bridge/delivery.py).

Performance: `on_records` runs on the hot path for every message. Return an `asyncio.Future` (or an
`Outcome`) rather than a coroutine when you can: a coroutine costs a task per message.
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


class Outcome(enum.Enum):
    """Why a confirmable data message may be acknowledged: the only answers of a sink that make a 2.04."""

    PUBLISHED = "published"  # published with QoS 1 and acknowledged (PUBACK) by the hub
    KEPT = "kept"  # written to the outbox, on disk (fsynced) before this was said
    NOTHING = "nothing"  # deliberately nothing to send: no record maps to anything the hub takes


Delivery = Outcome | Awaitable[Outcome]


class BrokenPromiseError(Exception):
    """A sink answered something other than an Outcome: refused (5.00) rather than acknowledged."""


def acknowledged(answer: object) -> Outcome:
    """The one place where a sink's answer becomes an acknowledgement: only an `Outcome` passes."""
    if isinstance(answer, Outcome):
        return answer
    raise BrokenPromiseError(f"the sink answered {answer!r} instead of an Outcome")


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
    ) -> Delivery:
        """Records from a device. `device` is registered unless `source` is INGEST (plain CBOR
        sensors need no registration). Return an Outcome, or an awaitable that yields one when safe."""
        ...


class NullSink:
    """A sink that drops everything, deliberately (tests, the simulator's own server)."""

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
    ) -> Delivery:
        return Outcome.NOTHING
