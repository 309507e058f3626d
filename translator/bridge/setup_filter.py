"""Which observations the registration set-up asks for: not those of resources the device's own Read showed
absent. Optional resources are common (a Device object without Memory Free, a sensor without min/max); asking
to observe them only earns 4.04s and warnings about nothing. Pure: observations and Read results in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from translator.codec.spec import Observation
from translator.lwm2m import Path, Record


def present_only(
    observations: Sequence[Observation], read: Mapping[Path, Sequence[Record]]
) -> tuple[list[Observation], list[Path]]:
    """The observations to make, and the paths left out. `read` holds the records of the object instances the
    set-up read (by instance path); a resource of an instance that was not read is kept (nothing known)."""
    kept: list[Observation] = []
    absent: list[Path] = []
    for observation in observations:
        path = observation.path
        instance = Path.of(path[:2]) if len(path) >= 2 else None
        records = read.get(instance) if instance is not None else None
        if records is None or any(record.path.startswith(path) for record in records):
            kept.append(observation)
        else:
            absent.append(path)
    return kept, absent
