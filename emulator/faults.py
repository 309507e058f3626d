"""Fault injection switches, set through the REST API and read by the DPS and hub services."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Faults:
    dps_throttled_until: float = 0.0
    hub_throttled_until: float = 0.0
    outage_until: float = 0.0
    # PUBACKs for telemetry held back until then (a hub that is slow to acknowledge, as when throttled).
    acks_delayed_until: float = 0.0
    # Tokens presented before an "expire tokens now" fault: refused from then on, as if they had expired.
    revoked_tokens: set[str] = field(default_factory=set)

    def dps_throttled(self, now: float) -> float:
        """Seconds of DPS throttling left (0 when not throttled)."""
        return max(0.0, self.dps_throttled_until - now)

    def hub_throttled(self, now: float) -> float:
        return max(0.0, self.hub_throttled_until - now)

    def ack_delay(self, now: float) -> float:
        return max(0.0, self.acks_delayed_until - now)

    def clear(self) -> None:
        self.dps_throttled_until = self.hub_throttled_until = self.outage_until = 0.0
        self.acks_delayed_until = 0.0
        self.revoked_tokens.clear()
