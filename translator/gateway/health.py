"""The gateway's health telemetry from the translator's own figures (pure).

`Figures` is what the translator knows at one moment; `telemetry` turns two consecutive moments into one
message: counts as they are, messages/s as the delivered-message counter's rise over the time between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from translator.gateway.model import SESSION_STATES, session_telemetry


@dataclass(frozen=True, slots=True)
class Figures:
    at: float  # monotonic seconds
    devices: int
    registrations: int
    sessions: Mapping[str, int]  # by state, in the pool's words
    outbox_depth: int
    messages_out: float  # the delivered-message counter


def telemetry(now: Figures, before: Figures | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "devices": now.devices,
        "registrations": now.registrations,
        **{session_telemetry(state): now.sessions.get(state, 0) for state in SESSION_STATES},
        "outboxDepth": now.outbox_depth,
    }
    if before is not None and now.at > before.at:
        rate = max(0.0, now.messages_out - before.messages_out) / (now.at - before.at)
        message["messagesPerSecond"] = round(rate, 3)
    return message
