"""What each device did at the emulator's DPS and hub, counted: registrations started, hub connections
accepted, and connections closed because a newer one with the same identity arrived.

Tests of several translators read it to tell a clean hand-over (one connect at the new owner) from a fight
(connects and DPS registrations piling up while two nodes take the device from each other).
`/emulator/activity` serves it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class DeviceActivity:
    dps_registrations: int = 0
    hub_connects: int = 0
    taken_over: int = 0  # connections closed by a newer connection of the same device (IoT Hub's 400027)

    def view(self) -> dict[str, int]:
        return {
            "dpsRegistrations": self.dps_registrations,
            "hubConnects": self.hub_connects,
            "takenOver": self.taken_over,
        }


class Activity:
    def __init__(self) -> None:
        self._devices: dict[str, DeviceActivity] = {}

    def of(self, device_id: str) -> DeviceActivity:
        activity = self._devices.get(device_id)
        if activity is None:
            activity = self._devices[device_id] = DeviceActivity()
        return activity

    def view(self, device_id: str | None = None) -> dict[str, Any]:
        if device_id is not None:
            return {device_id: self.of(device_id).view()}
        return {device: activity.view() for device, activity in sorted(self._devices.items())}
