"""What the bridge keeps across restarts, and the interface every store implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class StoreError(Exception):
    """The store cannot do what was asked (I/O failure, corrupt data)."""


class OutboxFullError(StoreError):
    """The outbox is at its bound: the message was not kept. The CoAP face answers 5.03 with Max-Age, so the
    device retries later instead of believing its data safe."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """Telemetry acknowledged to the device while its hub session was down, waiting to be replayed."""

    sequence: int  # global order of arrival
    device_id: str
    payload: bytes
    component: str | None = None
    creation_time: float | None = None  # the device's timestamp, epoch seconds
    properties: dict[str, str] = field(default_factory=dict)
    enqueued: float = 0.0


@dataclass(frozen=True, slots=True)
class HubAssignment:
    """The hub a device was assigned to (by DPS, or by an imported connection string) and its id there, kept
    so that a restart connects straight to the hub without running DPS again."""

    hub: str
    device_id: str
    substatus: str | None = None
    gateway_id: str | None = None  # the gateway DPS attached the device to when it assigned it


@dataclass(frozen=True, slots=True)
class RegistrationRecord:
    """An LwM2M registration, as the CoAP face describes it (`data` is its own JSON-able document)."""

    endpoint: str
    device_id: str
    data: dict[str, Any]
    updated: float


@dataclass(frozen=True, slots=True)
class PendingCommand:
    """A command waiting for a sleeping device, until `deadline` (epoch seconds)."""

    command_id: str
    device_id: str
    name: str
    payload: Any
    deadline: float
    created: float


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """A pre-registered device (`iotc-translator devices import`): endpoint, template and credentials."""

    device_id: str
    endpoint: str
    codec: str | None = None
    model_id: str | None = None
    symmetric_key: str | None = None
    certificate: str | None = None  # path of a PEM certificate chain
    private_key: str | None = None  # path of its PEM key
    # The CSV's other columns (site, building, customer…), as (column, value): a codec's enrichment.
    attributes: tuple[tuple[str, str], ...] = ()
    connection: str | None = None  # "persistent" or "ephemeral"; None: as its codec says


@dataclass(frozen=True, slots=True)
class PskEntry:
    """A device's DTLS pre-shared key: the identity it presents and the endpoint it may act as."""

    identity: str
    endpoint: str
    key: bytes = field(repr=False)


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # hub assignments (the session pool's cache, through bridge/assignments.py)
    async def get_assignment(self, device_id: str) -> HubAssignment | None: ...

    async def put_assignment(self, device_id: str, assignment: HubAssignment) -> None: ...

    async def forget_assignment(self, device_id: str) -> None: ...

    # registrations
    async def save_registration(self, record: RegistrationRecord) -> None: ...

    async def delete_registration(self, endpoint: str) -> None: ...

    async def registrations(self) -> list[RegistrationRecord]: ...

    async def write_registrations(self, saves: Sequence[RegistrationRecord], deletes: Sequence[str]) -> None:
        """Save and delete (by endpoint) registrations in one transaction."""
        ...

    # outbox
    async def outbox_append(
        self,
        device_id: str,
        payload: bytes,
        *,
        component: str | None = None,
        creation_time: float | None = None,
        properties: dict[str, str] | None = None,
    ) -> int: ...

    async def outbox_peek(self, device_id: str, limit: int = 100) -> list[OutboxMessage]: ...

    async def outbox_remove(self, sequences: list[int]) -> None: ...

    async def outbox_depth(self, device_id: str | None = None) -> int: ...

    async def outbox_devices(self) -> list[str]: ...

    def outbox_size(self) -> int:
        """Messages in the outbox now, without I/O (for metrics)."""
        ...

    # commands for sleeping devices
    async def add_command(self, command: PendingCommand) -> None: ...

    async def commands(self, device_id: str) -> list[PendingCommand]: ...

    async def remove_command(self, command_id: str) -> None: ...

    # pre-registered devices
    async def put_device(self, entry: DeviceEntry) -> None: ...

    async def device_for_endpoint(self, endpoint: str) -> DeviceEntry | None: ...

    async def devices(self) -> list[DeviceEntry]: ...

    # DTLS pre-shared keys
    async def put_psk(self, entry: PskEntry) -> None: ...

    async def remove_psk(self, endpoint: str) -> None: ...

    async def psk_for_identity(self, identity: str) -> PskEntry | None: ...

    async def psk_for_endpoint(self, endpoint: str) -> PskEntry | None: ...
