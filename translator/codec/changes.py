"""Which values of a notification or a Read are news. Pure: the caller passes the time.

IoT Central bills and throttles by message, and a notification often repeats values that did not change:
a composite observation carries every member whenever one changes, the first answer of an observation
repeats what the registration's Read just delivered, a pmax notification repeats a steady value. A value
equal to the last one forwarded for the same resource is dropped, with one exception the codec asks for:
telemetry with a `pmax` goes out again once `pmax` has passed since it last went out (the heartbeat the
codec chose; `pmax` arrives from the device's own timer, so a small slack absorbs jitter).

LwM2M Send is not filtered: the device chose to send those values (often historical, with timestamps).

Selecting does not yet remember: `commit` a selection once its records are safely on their way, so a
notification refused with back-pressure (and retransmitted by the device) is not then dropped as a
repeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from translator.codec.spec import Codec, Telemetry
from translator.lwm2m import Path, Record, Value

HEARTBEAT_SLACK = 0.9  # a pmax heartbeat is due after 90 % of pmax: notifications arrive with jitter


@dataclass(frozen=True, slots=True)
class Selection:
    """The records worth forwarding, and what to remember once they are forwarded."""

    records: tuple[Record, ...]
    remember: tuple[tuple[Path, Value, float], ...]


class ChangeFilter:
    """Per device: the last value forwarded for each resource (or resource instance) and when."""

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._last: dict[Path, tuple[Value, float]] = {}

    def select(self, records: Iterable[Record], now: float) -> Selection:
        fresh: list[Record] = []
        remember: list[tuple[Path, Value, float]] = []
        for record in records:
            value = record.value
            entry = self._codec.entry_for(record.path)
            if value is None or entry is None:
                fresh.append(record)  # nothing to compare: the mapper skips or counts it
                continue
            last = self._last.get(record.path)
            if last is not None and _same(last[0], value) and not _heartbeat_due(entry, last[1], now):
                continue
            fresh.append(record)
            remember.append((record.path, value, now))
        return Selection(tuple(fresh), tuple(remember))

    def commit(self, selection: Selection) -> None:
        for path, value, moment in selection.remember:
            self._last[path] = (value, moment)

    def forget(self, selection: Selection) -> None:
        """The values were not forwarded after all (refused): the next time they come, they are news."""
        for path, value, _ in selection.remember:
            last = self._last.get(path)
            if last is not None and _same(last[0], value):
                del self._last[path]


def _same(a: Value, b: Value) -> bool:
    # bool is an int in Python: True == 1 must not hide a Boolean resource turning into an Integer.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _heartbeat_due(entry: object, last_sent: float, now: float) -> bool:
    if not isinstance(entry, Telemetry) or entry.observe.pmax is None:
        return False
    return now - last_sent >= entry.observe.pmax * HEARTBEAT_SLACK
