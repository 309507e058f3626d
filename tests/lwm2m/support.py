"""Shared test data for the LwM2M core: the ../shared reference material and hypothesis strategies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path as FsPath
from typing import Any

import pytest
from hypothesis import strategies as st

from tests.conftest import SHARED
from translator.lwm2m import (
    ObjectModel,
    ObjectRegistry,
    ObjLink,
    Operations,
    Path,
    Record,
    ResourceModel,
    ResourceType,
)

REPO = FsPath(__file__).resolve().parents[2]
VECTORS = SHARED / "vectors" / "lwm2m-wire.jsonl"
DDF_REGISTRY = SHARED / "lwm2m-registry"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def require_shared(path: FsPath) -> FsPath:
    if not path.exists():
        pytest.skip(f"reference material {path} is not available")
    return path


@cache
def vectors() -> tuple[dict[str, Any], ...]:
    """The captured datagrams; inside a test, skips it when the reference material is absent."""
    with require_shared(VECTORS).open(encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def vectors_if_present() -> tuple[dict[str, Any], ...]:
    """For module-level parametrisation: no vectors (so no cases) in a clone without ../shared, where a
    skip would abort collection."""
    return vectors() if VECTORS.exists() else ()


def vector(exchange: str, direction: str = "client->server", index: int = 0) -> dict[str, Any]:
    found = [
        v for v in vectors() if v["exchange"] == exchange and v["direction"] == direction and v["payload_hex"]
    ]
    return found[index]


def at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


# A synthetic object with one single and one multiple-instance resource of every type.
TEST_OBJECT = 40000
VALUE_TYPES = (
    ResourceType.STRING,
    ResourceType.INTEGER,
    ResourceType.UNSIGNED_INTEGER,
    ResourceType.FLOAT,
    ResourceType.BOOLEAN,
    ResourceType.OPAQUE,
    ResourceType.TIME,
    ResourceType.OBJLNK,
    ResourceType.CORELNK,
)
SINGLE_RID = {t: i for i, t in enumerate(VALUE_TYPES)}
MULTI_RID = {t: 10 + i for i, t in enumerate(VALUE_TYPES)}

TEST_MODEL = ObjectModel(
    id=TEST_OBJECT,
    name="Every Type",
    version="1.0",
    resources=tuple(
        ResourceModel(id=rid, name=f"{t.value} {kind}", type=t, operations=Operations.READ | Operations.WRITE,
                      multiple=kind == "multi", mandatory=False)
        for kind, table in (("single", SINGLE_RID), ("multi", MULTI_RID))
        for t, rid in table.items()
    ),
)  # fmt: skip


@cache
def registry() -> ObjectRegistry:
    return ObjectRegistry.builtin().merged([TEST_MODEL])


def value_strategy(rtype: ResourceType) -> st.SearchStrategy[Any]:
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return st.text(max_size=40)
    if rtype is ResourceType.INTEGER:
        return st.integers(-(2**63), 2**63 - 1)
    if rtype is ResourceType.UNSIGNED_INTEGER:
        return st.integers(0, 2**64 - 1)
    if rtype is ResourceType.FLOAT:
        return st.floats(allow_nan=False, allow_infinity=False)
    if rtype is ResourceType.BOOLEAN:
        return st.booleans()
    if rtype is ResourceType.OPAQUE:
        return st.binary(max_size=40)
    if rtype is ResourceType.TIME:
        return st.integers(-62135596800, 253402300799).map(at)
    assert rtype is ResourceType.OBJLNK
    return st.builds(ObjLink, st.integers(0, 65535), st.integers(0, 65535))


ABSOLUTE_TIMES = st.floats(min_value=2**28, max_value=2**33, allow_nan=False)


@st.composite
def single_record(draw: st.DrawFn, rtype: ResourceType | None = None) -> Record:
    """One value of a single-instance resource (or of one resource instance)."""
    t = draw(st.sampled_from(VALUE_TYPES)) if rtype is None else rtype
    iid = draw(st.integers(0, 65535))
    if draw(st.booleans()):
        path = Path(TEST_OBJECT, iid, SINGLE_RID[t])
    else:
        path = Path(TEST_OBJECT, iid, MULTI_RID[t], draw(st.integers(0, 65535)))
    return Record(path, draw(value_strategy(t)))


@st.composite
def record_sets(draw: st.DrawFn, *, instances: int = 3, times: bool = False) -> list[Record]:
    """Records with distinct paths spread over instances and resources, in a random order."""
    out: dict[Path, Record] = {}
    for iid in draw(st.lists(st.integers(0, 65535), min_size=1, max_size=instances, unique=True)):
        for t in draw(st.lists(st.sampled_from(VALUE_TYPES), max_size=4, unique=True)):
            when = draw(st.none() | ABSOLUTE_TIMES) if times else None
            if draw(st.booleans()):
                path = Path(TEST_OBJECT, iid, SINGLE_RID[t])
                out[path] = Record(path, draw(value_strategy(t)), when)
            else:
                for ri in draw(st.lists(st.integers(0, 65535), min_size=1, max_size=3, unique=True)):
                    path = Path(TEST_OBJECT, iid, MULTI_RID[t], ri)
                    out[path] = Record(path, draw(value_strategy(t)), when)
    records = list(out.values())
    if not records:
        path = Path(TEST_OBJECT, 0, SINGLE_RID[ResourceType.INTEGER])
        records = [Record(path, draw(value_strategy(ResourceType.INTEGER)))]
    return draw(st.permutations(records))


def typed(values: object) -> object:
    """Values paired with their types, so that 1 == True == 1.0 cannot hide a typing mistake."""
    if isinstance(values, dict):
        return {k: (type(v), v) for k, v in values.items()}
    if isinstance(values, list):
        return [
            (r.path, type(r.value), r.value, r.time) if isinstance(r, Record) else (type(r), r)
            for r in values
        ]
    return (type(values), values)
