"""The codec: a device template and how each of its contents maps to LwM2M. Immutable data.

A `Codec` is what the loader builds from a TOML file and what the default codec generates; the
exporter turns it into DTDL and the `DeviceMapper` uses it to translate traffic. Wildcards are already
resolved here: every entry is bound to one component (or the root) and, inside a component, to one
object instance. Only root entries on single-instance objects may keep a wildcard instance.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from translator.codec.transforms import NO_TRANSFORMS, Transforms
from translator.codec.values import IDENTITY, Scaling
from translator.lwm2m import Path, ResourceModel


@dataclass(frozen=True, slots=True)
class PathPattern:
    """`/o/i/r` or `/o/*/r` (resource may be absent for an instance-level Read command)."""

    object_id: int
    instance_id: int | None
    resource_id: int | None = None

    def matches(self, path: Path) -> bool:
        """Whether `path` (a resource or resource instance) is this resource of a matching instance."""
        return (
            len(path) >= 3
            and path[0] == self.object_id
            and (self.instance_id is None or path[1] == self.instance_id)
            and path[2] == self.resource_id
        )

    def bind(self, instance_id: int) -> PathPattern:
        return PathPattern(self.object_id, instance_id, self.resource_id)

    def concrete(self, instance_id: int | None = None) -> Path:
        """The LwM2M path for `instance_id` (required when this pattern is a wildcard)."""
        iid = self.instance_id if self.instance_id is not None else instance_id
        if iid is None:
            raise ValueError(f"{self} needs an instance id")
        return (
            Path(self.object_id, iid)
            if self.resource_id is None
            else Path(self.object_id, iid, self.resource_id)
        )

    def __str__(self) -> str:
        iid = "*" if self.instance_id is None else str(self.instance_id)
        tail = "" if self.resource_id is None else f"/{self.resource_id}"
        return f"/{self.object_id}/{iid}{tail}"


@dataclass(frozen=True, slots=True)
class SemanticUnit:
    semantic_type: str
    unit: str


@dataclass(frozen=True, slots=True)
class ObserveAttributes:
    """LwM2M notification attributes, in device units (before scale/offset)."""

    pmin: int | None = None
    pmax: int | None = None
    gt: float | None = None
    lt: float | None = None
    st: float | None = None

    def query(self) -> dict[str, int | float]:
        """The attributes that are set, as Write-Attributes query parameters."""
        pairs = (("pmin", self.pmin), ("pmax", self.pmax), ("gt", self.gt), ("lt", self.lt), ("st", self.st))
        return {k: v for k, v in pairs if v is not None}


NO_ATTRIBUTES = ObserveAttributes()


@dataclass(frozen=True, slots=True)
class Component:
    """A DTDL component standing for one object instance."""

    name: str
    object_id: int
    instance_id: int
    interface_id: str
    display_name: str | None = None
    interface_display_name: str | None = None  # when several components share one interface


class Compound(enum.Enum):
    """IoT Central's object schemas (its DTDL extension): one telemetry value made of several resources.

    https://learn.microsoft.com/azure/iot-central/core/howto-use-location-data (geopoint: {lat, lon, alt})
    and the IoT Central extension of DTDL v2 (vector: {x, y, z}, doubles), dtmi:iotcentral:context;2.
    """

    GEOPOINT = "geopoint"
    VECTOR = "vector"

    @property
    def fields(self) -> tuple[str, ...]:
        return ("lat", "lon", "alt") if self is Compound.GEOPOINT else ("x", "y", "z")

    @property
    def required(self) -> tuple[str, ...]:
        """Without these a value means nothing (a point needs latitude and longitude; altitude may lack)."""
        return ("lat", "lon") if self is Compound.GEOPOINT else ("x", "y", "z")


@dataclass(frozen=True, slots=True)
class Member:
    """This telemetry is field `field` of the compound telemetry `name` (e.g. `lat` of `location`)."""

    name: str
    schema: Compound
    field: str
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Telemetry:
    name: str
    pattern: PathPattern
    resource: ResourceModel
    component: str | None = None
    display_name: str | None = None
    unit: SemanticUnit | None = None
    scaling: Scaling = IDENTITY
    observe: ObserveAttributes = NO_ATTRIBUTES
    member: Member | None = None  # one field of a geopoint or vector; exported and sent as that object


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    pattern: PathPattern
    resource: ResourceModel
    writable: bool = False
    component: str | None = None
    display_name: str | None = None
    unit: SemanticUnit | None = None
    scaling: Scaling = IDENTITY


class Operation(enum.Enum):
    EXECUTE = "execute"
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Argument:
    """A request field of an Execute command, sent as argument `digit` (`0='value'`)."""

    name: str
    digit: int
    schema: str  # string | long | double | boolean


@dataclass(frozen=True, slots=True)
class ReadField:
    """A response field of an instance-level Read command."""

    name: str
    resource: ResourceModel


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    operation: Operation
    pattern: PathPattern
    component: str | None = None
    display_name: str | None = None
    resource: ResourceModel | None = None  # the target resource (None for an instance-level Read)
    arguments: tuple[Argument, ...] = ()
    fields: tuple[ReadField, ...] = ()


Entry = Telemetry | Property | Command


@dataclass(frozen=True, slots=True)
class Observation:
    """What the bridge should observe: a concrete path and its notification attributes."""

    path: Path
    attributes: dict[str, int | float]


Connection = Literal["persistent", "ephemeral"]
CONNECTIONS: tuple[Connection, ...] = ("persistent", "ephemeral")


@dataclass(frozen=True)
class Codec:
    """A device template and its mapping. Build through the loader or `default_codec`, which validate."""

    source: str
    model_id: str
    display_name: str | None
    description: str | None
    components: tuple[Component, ...]
    telemetry: tuple[Telemetry, ...]
    properties: tuple[Property, ...]
    commands: tuple[Command, ...]
    # Object instances left out to keep the template within IoT Central's capability limit (default codec).
    left_out: tuple[Path, ...] = ()
    # Computed telemetry, enrichment, drop and rename (codec/transforms.py); none for the default codec.
    transforms: Transforms = NO_TRANSFORMS
    # "ephemeral": telemetry only, sent without a held session (translator/bridge/ephemeral.py).
    connection: Connection = "persistent"
    _by_resource: dict[tuple[int, int | None, int], Telemetry | Property] = field(
        init=False, repr=False, compare=False
    )
    _by_name: dict[tuple[str | None, str], Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_resource: dict[tuple[int, int | None, int], Telemetry | Property] = {}
        by_name: dict[tuple[str | None, str], Entry] = {}
        for entry in self.entries():
            by_name[(entry.component, entry.name)] = entry
            if isinstance(entry, Telemetry | Property) and entry.pattern.resource_id is not None:
                key = (entry.pattern.object_id, entry.pattern.instance_id, entry.pattern.resource_id)
                by_resource.setdefault(key, entry)
        object.__setattr__(self, "_by_resource", by_resource)
        object.__setattr__(self, "_by_name", by_name)

    def entries(self) -> Iterator[Entry]:
        yield from self.telemetry
        yield from self.properties
        yield from self.commands

    def in_component(self, component: str | None) -> list[Entry]:
        return [e for e in self.entries() if e.component == component]

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    @property
    def component_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.components)

    def entry_for(self, path: Path) -> Telemetry | Property | None:
        """The telemetry or property a record at `path` (resource or resource instance) maps to."""
        if len(path) < 3:
            return None
        exact = self._by_resource.get((path[0], path[1], path[2]))
        return exact if exact is not None else self._by_resource.get((path[0], None, path[2]))

    def entry_named(self, component: str | None, name: str) -> Entry | None:
        return self._by_name.get((component, name))

    def observations(self, instances: Iterable[Path]) -> list[Observation]:
        """Telemetry paths to observe for the object instances a device registered."""
        return [
            Observation(path, t.observe.query())
            for t in self.telemetry
            for path in _paths(t.pattern, instances)
        ]

    def property_paths(self, instances: Iterable[Path]) -> list[Path]:
        """Property resources to read (or observe) for the registered object instances."""
        return [path for p in self.properties for path in _paths(p.pattern, instances)]


def _paths(pattern: PathPattern, instances: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for inst in instances:
        if len(inst) != 2 or inst[0] != pattern.object_id:
            continue
        if pattern.instance_id is None or pattern.instance_id == inst[1]:
            found.append(pattern.concrete(inst[1]))
    return found
