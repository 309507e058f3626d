"""How to observe a codec's telemetry: which paths share one observation. Pure.

A composite observation is one request and one notification for several paths, but a client that has it
(the LwM2M 1.2 client) notifies *every* member whenever *any* member's attributes fire: one composite over
everything makes each value travel at the rate of the fastest one, defeating the codec's pmin, and turns
the device's silence (what lets a queue-mode device sleep) into a steady stream. So paths share a composite
only where that changes no rate:

- they belong to the same object instance (one IoT Central component: their values travel in one
  telemetry message anyway, so the composite saves messages instead of merging rates across components);
- their notification attributes are identical (the same pmin/pmax, so the same schedule);
- those attributes set no value condition (gt/lt/st): a condition is judged per resource, and in a
  composite a member would travel whenever another member crosses its own threshold.

Everything else is observed path by path, each with its own attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from translator.codec.spec import Observation
from translator.lwm2m import Path

_CONDITIONS = frozenset({"gt", "lt", "st"})


@dataclass(frozen=True, slots=True)
class ObservationGroup:
    """One Observe (or Observe-Composite when `composite`) of `paths`, all sharing `attributes`."""

    paths: tuple[Path, ...]
    attributes: Mapping[str, int | float]
    composite: bool


def _key(observation: Observation) -> tuple[Path, tuple[tuple[str, int | float], ...]]:
    path = observation.path
    return Path.of(path[:2]), tuple(sorted(observation.attributes.items()))


def plan_observations(observations: Iterable[Observation], *, composite: bool) -> list[ObservationGroup]:
    """Group `observations` (a path appears once) into observe requests. `composite`: the device may take
    Observe-Composite (LwM2M 1.1+); it may still refuse it, and the CoAP face then falls back to single
    observations of the group's paths. Groups come in path order."""
    groups: dict[tuple[Path, tuple[tuple[str, int | float], ...]], list[Path]] = {}
    attributes: dict[tuple[Path, tuple[tuple[str, int | float], ...]], Mapping[str, int | float]] = {}
    seen: set[Path] = set()
    for observation in observations:
        if observation.path in seen:
            continue
        seen.add(observation.path)
        key = _key(observation)
        groups.setdefault(key, []).append(observation.path)
        attributes.setdefault(key, dict(observation.attributes))
    plan: list[ObservationGroup] = []
    for key, paths in groups.items():
        shared = attributes[key]
        paths.sort()
        if composite and len(paths) > 1 and not _CONDITIONS & shared.keys():
            plan.append(ObservationGroup(tuple(paths), shared, True))
        else:
            plan.extend(ObservationGroup((path,), shared, False) for path in paths)
    plan.sort(key=lambda group: group.paths[0])
    return plan
