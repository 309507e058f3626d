"""The bridge's figures for operations: the gauges /metrics reads at each scrape, and /healthz's details."""

from __future__ import annotations

from collections.abc import Sized
from typing import TYPE_CHECKING

from translator.iotc.client.pool import SessionPool
from translator.iotc.client.session import SessionState
from translator.store import Store

if TYPE_CHECKING:
    from translator.coap import Lwm2mServer

HEALTH_NAMES = 100  # device ids /healthz lists at most per state


def _sessions_by_state(pool: SessionPool) -> dict[str, int]:
    return {
        name.split(":", 1)[1]: value for name, value in pool.metrics().items() if name.startswith("sessions:")
    }


def gauges(
    pool: SessionPool, coap: Lwm2mServer | None, store: Store, lives: Sized
) -> dict[str, dict[tuple[str, ...], float]]:
    return {
        "iotc_translator_sessions": {(state,): float(n) for state, n in _sessions_by_state(pool).items()},
        "iotc_translator_registrations": {(): float(len(coap.store)) if coap is not None else 0.0},
        "iotc_translator_outbox_depth": {(): float(store.outbox_size())},
        "iotc_translator_devices": {(): float(len(lives))},
    }


def health(pool: SessionPool, lives: Sized) -> dict[str, object]:
    details: dict[str, object] = {
        "devices": len(lives),
        "sessions": {state: n for state, n in _sessions_by_state(pool).items() if n},
    }
    waiting = pool.in_state(SessionState.WAITING_APPROVAL)
    if waiting:
        # Refused by IoT Central until an operator approves or unblocks them: named, so the operator
        # knows whom to approve (their telemetry waits in the outbox meanwhile).
        details["waiting_for_approval"] = sorted(waiting)[:HEALTH_NAMES]
    return details
