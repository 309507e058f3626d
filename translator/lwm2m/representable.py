"""What a decoded value must be to go any further: a finite number, and a time a calendar can write.

IoT Central telemetry and properties are JSON, which has no NaN or infinity, and a device time is sent
as an ISO 8601 `iothub-creation-time-utc`, which ends at year 9999. A value outside either used to be
published as `null` (NaN), as non-JSON `NaN` (ingest), or to fail after decoding (a 5.00 the device
retries forever). The policy, the same for every content format: the whole request is refused, naming
the record, as a bad request (4.00) — the device can see and fix it, and nothing is lost silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from translator.lwm2m.errors import UnrepresentableValue
from translator.lwm2m.records import Record

# 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z: the times `datetime` (and ISO 8601 with four digits)
# can hold; a device clock before the epoch is wrong, not history.
MIN_TIME = 0.0
MAX_TIME = 253_402_300_799.0


def problem(value: object, time: float | None) -> str | None:
    """Why a value or its time cannot travel on, or None when both can."""
    if type(value) is float and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if time is not None and not MIN_TIME <= time <= MAX_TIME:  # False for NaN too
        return f"time {time!r} is not between 1970 and 9999"
    return None


def check_records(records: Sequence[Record], fmt: str) -> None:
    """Refuse the payload at its first record that cannot travel on (`UnrepresentableValue`, 4.00)."""
    # On the hot path for every message: tuple unpacking and an inlined test (x - x is NaN for NaN and
    # ±inf, 0.0 for every finite float) cost ~1 µs per 6-record Send; `problem` then says what is wrong.
    for _, value, time in records:
        if (type(value) is float and value - value != 0.0) or (
            time is not None and not MIN_TIME <= time <= MAX_TIME
        ):
            break
    else:
        return
    for index, record in enumerate(records):
        why = problem(record.value, record.time)
        if why is not None:
            raise UnrepresentableValue(f"{fmt}: record {index} ({record.path}): {why}")
