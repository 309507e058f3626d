"""The oracle of the delivery guarantee: every acknowledged reading at the hub, with its duplicates and
reorderings counted."""

from __future__ import annotations

from dataclasses import dataclass

from tests.conftest import RestClient


async def hub_readings(rest: RestClient, device_id: str, after: int) -> list[int]:
    """The readings of the device at the hub (the emulator's telemetry log), in arrival order."""
    readings: list[int] = []
    while True:
        log = await rest.get(f"/emulator/telemetry?deviceId={device_id}&after={after}")
        if not log["value"]:
            return readings
        for event in log["value"]:
            after = event["sequence"]
            value = event["body"].get("temperature")
            if isinstance(value, int | float):
                readings.append(int(value))


@dataclass
class Verdict:
    lost: list[int]
    duplicates: int
    reordered: int


def judge(acknowledged: list[int], readings: list[int]) -> Verdict:
    """Lost: acknowledged but not at the hub. Duplicates: deliveries beyond the first. Reordered: first
    deliveries that came after a later reading's (at least once allows repeats, not a changed order)."""
    seen: set[int] = set()
    reordered = 0
    highest = -1
    for reading in readings:
        if reading in seen:
            continue
        seen.add(reading)
        if reading < highest:
            reordered += 1
        highest = max(highest, reading)
    return Verdict(
        lost=sorted(set(acknowledged) - seen),
        duplicates=len(readings) - len(seen),
        reordered=reordered,
    )
