"""The object registry: built-in models plus any DDF directory, one immutable object per server."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path as FsPath
from typing import Protocol

from translator.lwm2m import builtin_objects
from translator.lwm2m.ddf import load_ddf_directory
from translator.lwm2m.model import (
    ObjectModel,
    Operations,
    ResourceModel,
    ResourceType,
    version_key,
)


class ResourceLookup(Protocol):
    """What the content formats need from a registry: the model of `/object/*/resource`."""

    def resource_model(self, object_id: int, resource_id: int) -> ResourceModel | None: ...


def builtin_models() -> tuple[ObjectModel, ...]:
    """The compact built-in table (core objects 0-7 and IPSO 3200-3350) as models."""
    return tuple(
        ObjectModel(
            id=oid,
            name=name,
            version=version,
            lwm2m_version=lwm2m_version,
            multiple=multiple,
            mandatory=mandatory,
            urn=urn,
            resources=tuple(
                ResourceModel(
                    id=rid,
                    name=rname,
                    type=ResourceType(rtype),
                    operations=Operations.from_ddf(ops),
                    multiple=rmultiple,
                    mandatory=rmandatory,
                    units=units,
                    range=rng,
                )
                for rid, rname, ops, rmultiple, rmandatory, rtype, units, rng in resources
            ),
        )
        for oid, name, version, lwm2m_version, multiple, mandatory, urn, resources in builtin_objects.OBJECTS
    )


MAX_SHARED_LOOKUPS = 1024


class ObjectRegistry:
    """Object models keyed by (object id, object version).

    Immutable: `merged` and `with_ddf_directory` return new registries, so one instance can be shared by
    every device without locks. Lookups without a version use the newest version known.
    """

    __slots__ = ("_by_key", "_latest", "_lookups", "_resources")

    def __init__(self, models: Iterable[ObjectModel] = ()) -> None:
        by_key: dict[tuple[int, str], ObjectModel] = {}
        for m in models:
            by_key[m.key] = m  # later models override earlier ones of the same id and version
        self._by_key = by_key
        latest: dict[int, ObjectModel] = {}
        for m in by_key.values():
            cur = latest.get(m.id)
            if cur is None or version_key(m.version) > version_key(cur.version):
                latest[m.id] = m
        self._latest = latest
        # The per-record lookup of every decoder: one dict probe.
        self._resources = {(m.id, r.id): r for m in latest.values() for r in m.resources}
        # Lookups are immutable and a fleet registers a handful of object lists: one lookup per list, not
        # one per device (~3 KB each: 20,000 registrations held 60 MB of identical dicts).
        self._lookups: dict[tuple[tuple[int, str | None], ...], VersionedLookup] = {}

    @classmethod
    def builtin(cls) -> ObjectRegistry:
        return cls(builtin_models())

    @classmethod
    def with_ddf_directory(cls, directory: str | FsPath, *, include_builtin: bool = True) -> ObjectRegistry:
        """Built-ins (optionally) overridden by every DDF file of `directory`, per object id and version."""
        base = builtin_models() if include_builtin else ()
        return cls((*base, *load_ddf_directory(directory)))

    def merged(self, models: Iterable[ObjectModel]) -> ObjectRegistry:
        """A new registry where `models` override this one's per (object id, version)."""
        return ObjectRegistry((*self._by_key.values(), *models))

    def get(self, object_id: int, version: str | None = None) -> ObjectModel | None:
        """The model of `object_id` at `version`, or the newest known when that version is unknown."""
        if version is not None:
            exact = self._by_key.get((object_id, version))
            if exact is not None:
                return exact
        return self._latest.get(object_id)

    def versions(self, object_id: int) -> tuple[str, ...]:
        return tuple(
            sorted((v for (oid, v) in self._by_key if oid == object_id), key=version_key),
        )

    def resource_model(self, object_id: int, resource_id: int) -> ResourceModel | None:
        return self._resources.get((object_id, resource_id))

    def for_versions(self, versions: Mapping[int, str | None]) -> VersionedLookup:
        """A lookup bound to the object versions one client registered (`</3303>;ver=1.1`); shared by every
        client that registered the same versions."""
        key = tuple(sorted(versions.items(), key=lambda item: item[0]))
        lookup = self._lookups.get(key)
        if lookup is None:
            if len(self._lookups) >= MAX_SHARED_LOOKUPS:
                del self._lookups[next(iter(self._lookups))]  # any bound will do: these are a cache
            lookup = self._lookups[key] = VersionedLookup(self, versions)
        return lookup

    def __iter__(self) -> Iterator[ObjectModel]:
        return iter(sorted(self._by_key.values(), key=lambda m: (m.id, version_key(m.version))))

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._latest

    def __repr__(self) -> str:
        return f"ObjectRegistry({len(self._by_key)} models, {len(self._latest)} objects)"


class VersionedLookup:
    """A `ResourceLookup` that prefers the object versions a client announced."""

    __slots__ = ("_registry", "_resources")

    def __init__(self, registry: ObjectRegistry, versions: Mapping[int, str | None]) -> None:
        self._registry = registry
        resources: dict[tuple[int, int], ResourceModel] = {}
        for oid, ver in versions.items():
            model = registry.get(oid, ver)
            if model is not None:
                resources.update(((oid, r.id), r) for r in model.resources)
        self._resources = resources

    def resource_model(self, object_id: int, resource_id: int) -> ResourceModel | None:
        found = self._resources.get((object_id, resource_id))
        if found is None:
            return self._registry.resource_model(object_id, resource_id)
        return found
