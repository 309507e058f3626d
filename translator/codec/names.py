"""DTDL names: the rule, and how LwM2M object and resource names become readable, unique ones.

DTDL v2 `name`: 1-64 characters matching `^[a-zA-Z](?:[a-zA-Z0-9_]*[a-zA-Z0-9])?$`, unique among the
contents of one interface.

The generation scheme (stable: a name depends only on the model, never on arrival order):

1. `camel_name("Min Measured Value")` → `minMeasuredValue`: ASCII-fold, split on anything that is not a
   letter or digit, lower-case the first word, capitalise the rest (acronyms too: `LWM2M Server URI` →
   `lwm2mServerUri`). A name starting with a digit gets a letter prefix (`r` resource, `o` object);
   an empty one becomes `resource` / `object`. Generated bases never contain `_`.
2. Bases are cut to leave room for a suffix (58 characters for resources, 52 for components).
3. Resources of one object whose bases collide are *all* suffixed with `_{resource id}`, so which one
   "wins" never depends on order. Because bases have no `_`, a suffixed name never equals a plain one,
   and two suffixed names differ by their id: names within an object are unique by construction.
4. Components (one per object instance): `{base}` for a single-instance object, `{base}_{instance}` for
   a multiple-instance one (so the first sensor is `temperature_0` whether or not a second appears);
   objects whose bases collide in one template use `{base}_{object id}_{instance}`. The number of `_`
   tells the three forms apart, so component names are unique too.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

MAX_NAME = 64
_NAME = re.compile(r"[a-zA-Z](?:[a-zA-Z0-9_]*[a-zA-Z0-9])?")
_WORD = re.compile(r"[A-Za-z0-9]+")
# Room left for `_65535` (resources) and `_65535_65535` (components).
RESOURCE_BASE_MAX = MAX_NAME - 6
COMPONENT_BASE_MAX = MAX_NAME - 12


def is_dtdl_name(name: str) -> bool:
    return len(name) <= MAX_NAME and _NAME.fullmatch(name) is not None


def camel_name(text: str, *, prefix: str, empty: str) -> str:
    """A camelCase DTDL-safe base for a human name (no `_`, may be longer than 64)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = _WORD.findall(folded)
    if not words:
        return empty
    parts = [words[0].lower()] + [w[:1].upper() + w[1:].lower() for w in words[1:]]
    joined = "".join(parts)
    return prefix + joined if joined[0].isdigit() else joined


def resource_names(resources: Mapping[int, str]) -> dict[int, str]:
    """Unique DTDL names for the resources of one object, keyed by resource id."""
    bases = {
        rid: camel_name(name, prefix="r", empty="resource")[:RESOURCE_BASE_MAX]
        for rid, name in resources.items()
    }
    counts = Counter(bases.values())
    return {rid: base if counts[base] == 1 else f"{base}_{rid}" for rid, base in bases.items()}


def component_names(instances: Iterable[tuple[int, int, str, bool]]) -> dict[tuple[int, int], str]:
    """Unique component names for object instances: rows of (object id, instance, object name, multiple)."""
    rows = list(instances)
    bases = {
        oid: camel_name(name, prefix="o", empty="object")[:COMPONENT_BASE_MAX] for oid, _, name, _ in rows
    }
    objects_per_base = Counter(bases.values())  # one entry per object id, not per instance
    instances_per_object = Counter(oid for oid, _, _, _ in rows)
    names: dict[tuple[int, int], str] = {}
    for oid, iid, _, multiple in rows:
        base = bases[oid]
        if objects_per_base[base] > 1:
            names[(oid, iid)] = f"{base}_{oid}_{iid}"
        elif multiple or instances_per_object[oid] > 1:
            names[(oid, iid)] = f"{base}_{iid}"
        else:
            names[(oid, iid)] = base
    return names


def display_name(text: str, fallback: str) -> str:
    """A DTDL displayName (1-64 characters)."""
    cleaned = " ".join(text.split())
    if not cleaned:
        return fallback
    return cleaned if len(cleaned) <= MAX_NAME else cleaned[: MAX_NAME - 1].rstrip() + "…"
