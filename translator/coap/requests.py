"""Typed downlink requests: what the server asks a device, as small frozen values. Pure.

Each request knows its name (logs, errors), what this server refuses to send (`refusal`), and how it goes
on the wire for a content format (`message`). `perform` hands the request to a `Performer` — the downlink
sender — which does the exchange; the double dispatch lets one `send(request)` return each request's own
result type without casts. Leshan separates its typed requests from the sender the same way
(`ReadRequest`, `WriteRequest` … and `DownlinkRequestSender`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from translator.coap import wire
from translator.coap.errors import Code
from translator.coap.lifetime import lifetime_problem, written_lifetime
from translator.lwm2m import ContentFormat, Link, Path, Record, ResourceLookup, encode

if TYPE_CHECKING:
    from translator.coap.state import Device, Observation, ObservationHandle

T_co = TypeVar("T_co", covariant=True)

ATTRIBUTES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "edge", "con", "hqmax")


@dataclass(frozen=True, slots=True)
class CoapMessage:
    """A request as it goes on the wire, less the message id and token."""

    code: Code
    path: Path = field(default_factory=Path)
    query: tuple[str, ...] = ()
    accept: int | None = None
    content_format: int | None = None
    observe: int | None = None
    payload: bytes = b""

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.path)

    def options(self) -> list[tuple[int, bytes]]:
        """Raw options for the datagram tap (which sorts them by number)."""
        options = [] if self.observe is None else [(wire.OPT_OBSERVE, wire.uint(self.observe))]
        options.extend(wire.path_options(self.segments))
        if self.content_format is not None:
            options.append((wire.OPT_CONTENT_FORMAT, wire.uint(self.content_format)))
        options.extend((wire.OPT_URI_QUERY, q.encode()) for q in self.query)
        if self.accept is not None:
            options.append((wire.OPT_ACCEPT, wire.uint(self.accept)))
        return options


class Performer(Protocol):
    """Does the exchange of each request with a device (the plain downlink sender)."""

    def read(self, dev: Device, request: Read) -> Awaitable[list[Record]]: ...
    def discover(self, dev: Device, request: Discover) -> Awaitable[list[Link]]: ...
    def write(self, dev: Device, request: Write) -> Awaitable[None]: ...
    def execute(self, dev: Device, request: Execute) -> Awaitable[None]: ...
    def write_attributes(self, dev: Device, request: WriteAttributes) -> Awaitable[None]: ...
    def create(self, dev: Device, request: Create) -> Awaitable[Path]: ...
    def delete(self, dev: Device, request: Delete) -> Awaitable[None]: ...
    def read_composite(self, dev: Device, request: ReadComposite) -> Awaitable[list[Record]]: ...
    def observe(self, dev: Device, request: Observe) -> Awaitable[ObservationHandle]: ...
    def observe_composite(
        self, dev: Device, request: ObserveComposite
    ) -> Awaitable[list[ObservationHandle]]: ...
    def cancel_observation(self, dev: Device, request: CancelObservation) -> Awaitable[bool]: ...


class DownlinkRequest(Protocol[T_co]):
    @property
    def name(self) -> str: ...

    def refusal(self) -> str | None:
        """Why this server will not send the request (checked before it is sent or held), or None."""
        ...

    def perform(self, performer: Performer, dev: Device) -> Awaitable[T_co]: ...


class _Sendable:
    """Requests this server sends whatever they carry."""

    __slots__ = ()

    def refusal(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class Read(_Sendable):
    """Read a resource, instance or object; the Accept follows what the device announced."""

    path: Path

    @property
    def name(self) -> str:
        return f"read {self.path}"

    @property
    def kind(self) -> str:
        """What a content format that worked is remembered under."""
        return f"read{len(self.path)}"

    def message(self, accept: int) -> CoapMessage:
        return CoapMessage(Code.GET, self.path, accept=accept)

    def perform(self, performer: Performer, dev: Device) -> Awaitable[list[Record]]:
        return performer.read(dev, self)


@dataclass(frozen=True, slots=True)
class Discover(_Sendable):
    path: Path

    @property
    def name(self) -> str:
        return f"discover {self.path}"

    def message(self) -> CoapMessage:
        return CoapMessage(Code.GET, self.path, accept=ContentFormat.LINK_FORMAT)

    def perform(self, performer: Performer, dev: Device) -> Awaitable[list[Link]]:
        return performer.discover(dev, self)


@dataclass(frozen=True, slots=True)
class Write:
    """Write: replace (PUT) or, with `partial`, partial update (POST) of an instance."""

    path: Path
    records: tuple[Record, ...]
    partial: bool = False

    @property
    def name(self) -> str:
        return f"{'write-update' if self.partial else 'write'} {self.path}"

    @property
    def single(self) -> bool:
        return len(self.records) == 1 and len(self.path) >= 3

    @property
    def kind(self) -> str:
        return f"write{len(self.path)}{int(self.single)}"

    @property
    def lifetime(self) -> int | None:
        """The registration lifetime this write sets on the device (/1/x/1), if any."""
        return written_lifetime(self.path, self.records)

    def refusal(self) -> str | None:
        lifetime = self.lifetime
        problem = None if lifetime is None else lifetime_problem(lifetime)
        return None if problem is None else f"{problem}, which this server would refuse at Register"

    def message(self, content_format: int, lookup: ResourceLookup) -> CoapMessage:
        """Raises Lwm2mFormatError when the records do not fit `content_format`."""
        payload = encode(content_format, self.records, base_path=self.path, registry=lookup)
        code = Code.POST if self.partial else Code.PUT
        return CoapMessage(code, self.path, content_format=content_format, payload=payload)

    def perform(self, performer: Performer, dev: Device) -> Awaitable[None]:
        return performer.write(dev, self)


@dataclass(frozen=True, slots=True)
class Execute(_Sendable):
    """Execute a resource, with optional arguments (`0='a',1` per the specification's grammar)."""

    path: Path
    arguments: str | None = None

    def __post_init__(self) -> None:
        if len(self.path) != 3:
            raise ValueError("Execute targets a resource /o/i/r")

    @property
    def name(self) -> str:
        return f"execute {self.path}"

    def message(self) -> CoapMessage:
        payload = self.arguments.encode() if self.arguments else b""
        content_format = ContentFormat.TEXT if payload else None
        return CoapMessage(Code.POST, self.path, content_format=content_format, payload=payload)

    def perform(self, performer: Performer, dev: Device) -> Awaitable[None]:
        return performer.execute(dev, self)


def _attribute(name: str, value: float | None) -> str:
    if name not in ATTRIBUTES:
        raise ValueError(f"unknown attribute {name!r}")
    if value is None:
        return name  # removes the attribute
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


@dataclass(frozen=True, slots=True)
class WriteAttributes(_Sendable):
    """Write-Attributes (`pmin`, `pmax`, `gt`, `lt`, `st`, ...); None removes an attribute."""

    path: Path
    query: tuple[str, ...]

    @classmethod
    def of(cls, path: Path, attributes: Mapping[str, float | None]) -> WriteAttributes:
        """Raises ValueError for an attribute LwM2M does not define."""
        return cls(path, tuple(_attribute(name, value) for name, value in attributes.items()))

    @property
    def name(self) -> str:
        return f"write-attributes {self.path}"

    def message(self) -> CoapMessage:
        return CoapMessage(Code.PUT, self.path, query=self.query)

    def perform(self, performer: Performer, dev: Device) -> Awaitable[None]:
        return performer.write_attributes(dev, self)


@dataclass(frozen=True, slots=True)
class Create(_Sendable):
    """Create an object instance; answers its path (from Location-Path, or the requested id)."""

    object_id: int
    records: tuple[Record, ...]
    instance_id: int | None = None

    @property
    def name(self) -> str:
        return f"create /{self.object_id}"

    @property
    def target(self) -> Path:
        return Path(self.object_id) if self.instance_id is None else Path(self.object_id, self.instance_id)

    def _placed(self) -> list[Record]:
        """The records moved to the requested instance, when one is requested."""
        if self.instance_id is None:
            return list(self.records)
        return [
            Record(Path(self.object_id, self.instance_id, *r.path[2:]), r.value, r.time)
            if len(r.path) >= 3
            else r
            for r in self.records
        ]

    def message(self, content_format: int, lookup: ResourceLookup) -> CoapMessage:
        """Raises Lwm2mFormatError when the records do not fit `content_format`."""
        base = None if self.instance_id is None else self.target
        payload = encode(content_format, self._placed(), base_path=base, registry=lookup)
        return CoapMessage(Code.POST, Path(self.object_id), content_format=content_format, payload=payload)

    def created(self, location: Sequence[str]) -> Path:
        """The new instance's path, from the answer's Location-Path (which may be empty)."""
        segments = [seg for seg in location if seg]
        if len(segments) >= 2 and segments[-2] == str(self.object_id) and segments[-1].isdigit():
            return Path(self.object_id, int(segments[-1]))
        if self.instance_id is not None:
            return self.target
        instances = {r.path[1] for r in self.records if len(r.path) >= 2}
        return Path(self.object_id, instances.pop()) if len(instances) == 1 else Path(self.object_id)

    def perform(self, performer: Performer, dev: Device) -> Awaitable[Path]:
        return performer.create(dev, self)


@dataclass(frozen=True, slots=True)
class Delete(_Sendable):
    path: Path

    @property
    def name(self) -> str:
        return f"delete {self.path}"

    def message(self) -> CoapMessage:
        return CoapMessage(Code.DELETE, self.path)

    def perform(self, performer: Performer, dev: Device) -> Awaitable[None]:
        return performer.delete(dev, self)


def composite_message(paths: Sequence[Path], content_format: int, observe: int | None = None) -> CoapMessage:
    """FETCH of several paths (Read-Composite, Observe-Composite and its cancellation)."""
    payload = encode(content_format, [Record(p, None) for p in paths])
    return CoapMessage(
        Code.FETCH,
        Path(),
        accept=content_format,
        content_format=content_format,
        observe=observe,
        payload=payload,
    )


@dataclass(frozen=True, slots=True)
class ReadComposite(_Sendable):
    """Read-Composite (FETCH); falls back to one Read per path when the device has no composite."""

    paths: tuple[Path, ...]

    @property
    def name(self) -> str:
        return "read-composite"

    def message(self, content_format: int) -> CoapMessage:
        return composite_message(self.paths, content_format)

    def perform(self, performer: Performer, dev: Device) -> Awaitable[list[Record]]:
        return performer.read_composite(dev, self)


OBSERVE_REGISTER = 0
OBSERVE_DEREGISTER = 1


def observe_message(
    paths: tuple[Path, ...], composite: bool, content_format: int, observe: int
) -> CoapMessage:
    """The Observe (0) or proactive cancel (1) request of an observation."""
    if composite:
        return composite_message(paths, content_format, observe)
    return CoapMessage(Code.GET, paths[0], accept=content_format, observe=observe)


@dataclass(frozen=True, slots=True)
class Observe(_Sendable):
    """Observe a path; replaces an observation of the same path."""

    path: Path

    @property
    def name(self) -> str:
        return f"observe {self.path}"

    def perform(self, performer: Performer, dev: Device) -> Awaitable[ObservationHandle]:
        return performer.observe(dev, self)


@dataclass(frozen=True, slots=True)
class ObserveComposite(_Sendable):
    """Observe-Composite; falls back to one observation per path."""

    paths: tuple[Path, ...]

    @property
    def name(self) -> str:
        return "observe-composite"

    def perform(self, performer: Performer, dev: Device) -> Awaitable[list[ObservationHandle]]:
        return performer.observe_composite(dev, self)


@dataclass(frozen=True, slots=True)
class CancelObservation(_Sendable):
    """Cancel an observation proactively: its request again with Observe=1 and the same token."""

    observation: Observation

    @property
    def name(self) -> str:
        return f"cancel-observe {self.observation.paths}"

    def message(self) -> CoapMessage:
        obs = self.observation
        return observe_message(obs.paths, obs.composite, obs.content_format, OBSERVE_DEREGISTER)

    def perform(self, performer: Performer, dev: Device) -> Awaitable[bool]:
        return performer.cancel_observation(dev, self)
