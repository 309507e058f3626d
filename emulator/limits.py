"""The service limits the emulator enforces, with the numbers Microsoft documents (pure: a clock is given).

- DPS: 200 device registrations per minute per service; above it a registration is answered 429 with
  retry-after — https://learn.microsoft.com/azure/iot-dps/about-iot-dps#quotas-and-limits
- IoT Hub, per hub, by tier: new device connections and device-to-cloud sends per second (S1: the higher
  of 100/s or 12/s/unit; S2: 120/s/unit; S3: 6,000/s/unit). Above the throttle IoT Hub first shapes the
  traffic (accepts and processes late), and when that backlog is full it rejects: a connection is refused
  (CONNACK 3, server unavailable) and a send drops the connection —
  https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling#traffic-shaping
- IoT Central: individual devices can temporarily send up to 10 messages per second; 100 property
  updates per second per application; desired and reported sections 32 KB each, each property 4 KB;
  cloud-to-device messages 64 KB — https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits
- Direct method payloads up to 128 KB —
  https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-direct-methods#method-lifecycle
- At most 50 cloud-to-device messages queued per device, else 403004 DeviceMaximumQueueDepthExceeded —
  https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-messages-c2d#cloud-to-device-configuration-options
  and https://learn.microsoft.com/azure/iot-hub/troubleshoot-error-codes#403004-devicemaximumqueuedepthexceeded

Microsoft documents the quotas per minute or per second, not the algorithm: each rate here is a token
bucket refilled continuously that holds at most one period's quota.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Per-unit figures from the IoT Hub quotas page: (new connections or D2C sends per second per unit, floor).
_TIERS: dict[str, tuple[float, float]] = {
    "F1": (12.0, 100.0),
    "B1": (12.0, 100.0),
    "S1": (12.0, 100.0),
    "B2": (120.0, 0.0),
    "S2": (120.0, 0.0),
    "B3": (6000.0, 0.0),
    "S3": (6000.0, 0.0),
}


def tier_rate(tier: str, units: int) -> float:
    """New connections (or device-to-cloud sends) per second a hub of `units` units of `tier` admits."""
    try:
        per_unit, floor = _TIERS[tier.upper()]
    except KeyError:
        raise ValueError(f"unknown IoT Hub tier {tier!r} (known: {', '.join(_TIERS)})") from None
    return max(floor, per_unit * max(1, units))


class LimitExceeded(Exception):
    """A service-side request over a documented limit; `status`/`code` are what the service answers."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Bucket:
    """`rate` per second, at most `capacity` saved up."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._capacity = max(1.0, capacity)
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        return now

    def take(self) -> float:
        """Take a token now: 0.0 when one was there, else the seconds until one will be (none taken)."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def shape(self, backlog: float) -> float | None:
        """Take a token, borrowing up to `backlog` seconds ahead: the delay before it is due, or None when
        that would be further ahead than the backlog allows (nothing taken)."""
        self._refill()
        delay = max(0.0, (1.0 - self._tokens) / self._rate)
        if delay > backlog:
            return None
        self._tokens -= 1.0
        return delay


@dataclass(frozen=True, slots=True)
class LimitSettings:
    enabled: bool = True
    dps_registrations_per_minute: float = 200.0
    hub_connects_per_second: float = 100.0
    d2c_per_second: float = 100.0
    device_messages_per_second: float = 10.0
    property_updates_per_second: float = 100.0
    shaping_seconds: float = 5.0  # how far behind traffic shaping may fall before IoT Hub rejects
    reported_section_bytes: int = 32 * 1024
    property_bytes: int = 4 * 1024
    method_payload_bytes: int = 128 * 1024
    c2d_message_bytes: int = 64 * 1024
    c2d_queue_depth: int = 50


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON, as the service counts a twin section or a property."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


class ServiceLimits:
    """Every rate and size limit of one emulated application; all admit everything when disabled."""

    def __init__(self, settings: LimitSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._clock = clock
        per_minute = settings.dps_registrations_per_minute
        self._dps = Bucket(per_minute / 60.0, per_minute, clock)
        self._properties = Bucket(
            settings.property_updates_per_second, settings.property_updates_per_second, clock
        )
        self._connects: dict[str, Bucket] = {}
        self._sends: dict[str, Bucket] = {}
        self._devices: dict[str, Bucket] = {}
        self.refused: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def _refuse(self, kind: str) -> None:
        self.refused[kind] = self.refused.get(kind, 0) + 1

    def _per_second(self, table: dict[str, Bucket], key: str, rate: float) -> Bucket:
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = Bucket(rate, rate, self._clock)
        return bucket

    # -- rates ------------------------------------------------------------------------------------

    def dps_registration(self) -> float:
        """0.0 when a registration may start now, else the seconds DPS asks the device to wait."""
        if not self.enabled:
            return 0.0
        wait = self._dps.take()
        if wait:
            self._refuse("dps_registration")
        return wait

    def hub_connect(self, hub: str) -> bool:
        if not self.enabled:
            return True
        admitted = not self._per_second(self._connects, hub, self.settings.hub_connects_per_second).take()
        if not admitted:
            self._refuse("hub_connect")
        return admitted

    def telemetry(self, hub: str, device_id: str) -> float | None:
        """Seconds to hold the message's PUBACK back (traffic shaping), or None: throttled, disconnect.

        The device's own burst allowance (IoT Central) and the hub's send rate both apply; the larger
        shaping delay wins."""
        if not self.enabled:
            return 0.0
        settings = self.settings
        device = self._per_second(self._devices, device_id, settings.device_messages_per_second)
        hub_bucket = self._per_second(self._sends, hub, settings.d2c_per_second)
        device_delay = device.shape(settings.shaping_seconds)
        if device_delay is None:
            self._refuse("device_telemetry")
            return None
        hub_delay = hub_bucket.shape(settings.shaping_seconds)
        if hub_delay is None:
            self._refuse("hub_telemetry")
            return None
        return max(device_delay, hub_delay)

    def property_update(self) -> bool:
        if not self.enabled:
            return True
        admitted = not self._properties.take()
        if not admitted:
            self._refuse("property_update")
        return admitted

    # -- sizes ------------------------------------------------------------------------------------

    def check_desired(self, patch: dict[str, Any], section_after: dict[str, Any]) -> None:
        """A desired-properties update (IoT Central's PATCH of writable properties) within the twin limits."""
        problem = self.reported_problem(patch, section_after, section="desired")
        if problem:
            self._refuse("desired_size")
            raise LimitExceeded(413, "RequestEntityTooLarge", problem)

    def reported_problem(
        self, patch: dict[str, Any], section_after: dict[str, Any], section: str = "reported"
    ) -> str:
        """'' when a reported (or desired) patch is within the twin limits, else why it is refused."""
        if not self.enabled:
            return ""
        settings = self.settings
        for name, value in _leaf_properties(patch):
            size = json_size(value)
            if size > settings.property_bytes:
                return f"property {name!r} is {size} bytes, over the {settings.property_bytes} byte limit"
        size = json_size(section_after)
        if size > settings.reported_section_bytes:
            limit = settings.reported_section_bytes  # the desired section has the same limit
            return f"{section} section would be {size} bytes, over the {limit} limit"
        return ""

    def check_method_payload(self, payload: Any) -> None:
        if not self.enabled:
            return
        size = json_size(payload)
        if size > self.settings.method_payload_bytes:
            self._refuse("method_payload")
            raise LimitExceeded(
                413,
                "RequestEntityTooLarge",
                f"method payload of {size} bytes is over the {self.settings.method_payload_bytes} limit",
            )

    def check_c2d(self, payload: str, pending: int) -> None:
        if not self.enabled:
            return
        size = len(payload.encode())
        if size > self.settings.c2d_message_bytes:
            self._refuse("c2d_size")
            raise LimitExceeded(
                413,
                "MessageTooLarge",
                f"cloud-to-device message of {size} bytes is over the "
                f"{self.settings.c2d_message_bytes} byte limit",
            )
        if pending >= self.settings.c2d_queue_depth:
            self._refuse("c2d_queue")
            raise LimitExceeded(
                403,
                "DeviceMaximumQueueDepthExceeded",
                f"the device already has {pending} cloud-to-device messages queued "
                f"(at most {self.settings.c2d_queue_depth}); error 403004",
            )


def _leaf_properties(patch: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """The properties of a patch: top-level names, and a component's (`__t` marked) names inside it."""
    found: list[tuple[str, Any]] = []
    for name, value in patch.items():
        if isinstance(value, dict) and value.get("__t") == "c" and not prefix:
            found.extend(_leaf_properties({k: v for k, v in value.items() if k != "__t"}, f"{name}."))
        else:
            found.append((prefix + name, value))
    return found
