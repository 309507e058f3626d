"""The registration lifetime the server itself writes to the device: the Server object's Lifetime (/1/x/1).

A client that obeys a new lifetime need not say so: the LwM2M 1.1 client never sends `lt=` in its Updates
after the server wrote /1/x/1, it just waits longer between them. So the server tracks what it wrote, and
never writes a value its own Register would refuse. Lifetime 0 means "infinite" in the OMA Server object.
"""

from __future__ import annotations

from collections.abc import Sequence

from translator.lwm2m import Path, Record

SERVER_OBJECT = 1
LIFETIME_RESOURCE = 1
MAX_LIFETIME = 10 * 365 * 86400  # ten years: beyond this a lifetime is a mistake, not a plan


def lifetime_problem(value: int) -> str | None:
    """Why a lifetime is not acceptable, or None. 0 is ("infinite"), 1 … MAX_LIFETIME are."""
    if not 0 <= value <= MAX_LIFETIME:
        return f"lifetime {value} out of range 0..{MAX_LIFETIME}"
    return None


def written_lifetime(path: Path, records: Sequence[Record]) -> int | None:
    """The lifetime a Write of `records` at `path` sets, or None when it sets none."""
    if not path or path[0] != SERVER_OBJECT:
        return None
    for record in records:
        if len(record.path) == 3 and record.path[2] == LIFETIME_RESOURCE:
            value = record.value
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
    return None
