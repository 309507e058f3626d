"""Object and resource models: the facts of an OMA object definition, nothing else."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ResourceType(enum.Enum):
    """Resource data types; values are the DDF spellings (`NONE` is an executable's empty type)."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED_INTEGER = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    CORELNK = "Corelnk"
    NONE = "none"

    @classmethod
    def from_ddf(cls, text: str) -> ResourceType:
        """Parse a DDF `<Type>`; case and spaces vary (`Unsigned Integer`, `UnsignedInteger`)."""
        key = "".join(text.split()).lower()
        try:
            return _TYPE_BY_KEY[key]
        except KeyError:
            raise ValueError(f"unknown resource type {text!r}") from None


_TYPE_BY_KEY = {"".join(t.value.split()).lower(): t for t in ResourceType} | {"": ResourceType.NONE}


class Operations(enum.Flag):
    NONE = 0
    READ = enum.auto()
    WRITE = enum.auto()
    EXECUTE = enum.auto()

    @classmethod
    def from_ddf(cls, text: str) -> Operations:
        ops = cls.NONE
        for letter in text.strip().upper():
            try:
                ops |= _OPS_BY_LETTER[letter]
            except KeyError:
                raise ValueError(f"unknown operation {letter!r} in {text!r}") from None
        return ops

    @property
    def code(self) -> str:
        """The DDF spelling: `R`, `RW`, `E`, or `` for none."""
        return "".join(letter for letter, op in _OPS_BY_LETTER.items() if op in self)


_OPS_BY_LETTER = {"R": Operations.READ, "W": Operations.WRITE, "E": Operations.EXECUTE}


def version_key(version: str) -> tuple[int, ...]:
    """Order `1.0` < `1.1` < `1.10` < `2.0`; text that is not dotted numbers sorts first."""
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return ()


@dataclass(frozen=True, slots=True)
class ResourceModel:
    id: int
    name: str
    type: ResourceType
    operations: Operations
    multiple: bool
    mandatory: bool
    units: str = ""
    range: str = ""

    @property
    def readable(self) -> bool:
        return Operations.READ in self.operations

    @property
    def writable(self) -> bool:
        return Operations.WRITE in self.operations

    @property
    def executable(self) -> bool:
        return Operations.EXECUTE in self.operations


@dataclass(frozen=True, slots=True)
class ObjectModel:
    id: int
    name: str
    version: str = "1.0"
    lwm2m_version: str = "1.0"
    multiple: bool = True
    mandatory: bool = False
    urn: str = ""
    resources: tuple[ResourceModel, ...] = ()
    _by_id: dict[int, ResourceModel] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_id = {r.id: r for r in self.resources}
        if len(by_id) != len(self.resources):
            raise ValueError(f"object {self.id} defines a resource id twice")
        object.__setattr__(self, "_by_id", by_id)

    def resource(self, resource_id: int) -> ResourceModel | None:
        return self._by_id.get(resource_id)

    @property
    def key(self) -> tuple[int, str]:
        """Identity in a registry: (object id, object version)."""
        return (self.id, self.version)
