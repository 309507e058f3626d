"""Storage faults under the outbox replay (issue 12 §5): a store that cannot be written while the outbox is
replayed stops nothing for good and sends nothing twice."""

from __future__ import annotations

import time

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import (
    eventually,
    log_position,
    send_at,
    session_connected,
    simulated,
    telemetry_matching,
)
from translator.bridge import delivery
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator
from translator.store import SqliteStore

TEMPERATURE = Lwm2mPath(3303, 0, 5700)


def _sqlite(translator: Translator) -> SqliteStore:
    assert isinstance(translator.store, SqliteStore)
    return translator.store


def _store_errors(translator: Translator) -> float:
    value = translator.metrics.registry.get_sample_value("iotc_translator_errors_total", {"kind": "store"})
    return value or 0.0


async def test_a_read_only_store_pauses_the_replay_and_sends_nothing_twice(
    emulator: Emulator, rest: RestClient, translator: Translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox is replayed while the store is read-only: the hub gets the messages, their removal
    fails. Before, the replay stopped for good at that failure, and the next reconnect replayed the same
    rows again (each failed removal a batch of duplicates). Now what was sent is remembered and removed
    first, nothing is sent again meanwhile, and the replay retries by itself until the store is back."""
    monkeypatch.setattr(delivery, "STORE_RETRY", 0.5)
    async with simulated(translator, "ro-1", values={TEMPERATURE: 21.5}) as device:
        await session_connected(translator, "ro-1")
        start = await log_position(rest)
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
        assert status == 200
        base = float(int(time.time()) - 60)
        for n in range(5):
            await send_at(device, [(TEMPERATURE, 1000.0 + n, base + n)])  # kept in the outbox
        assert await translator.store.outbox_depth("ro-1") == 5

        await _sqlite(translator).db.execute("PRAGMA query_only = ON")  # the filesystem went read-only
        errors = _store_errors(translator)
        await rest.request("POST", "/emulator/faults/clear")
        await telemetry_matching(rest, "ro-1", lambda e: e["component"] == "temperature_0", 5, after=start)

        async def removal_refused() -> bool:
            return _store_errors(translator) > errors

        await eventually(removal_refused, what="the removal refused by the read-only store")
        assert await translator.store.outbox_depth("ro-1") == 5
        # A reconnect asks for a replay: the rows already sent are not sent again.
        errors = _store_errors(translator)
        status, _ = await rest.request("POST", "/emulator/faults/disconnect-all")
        assert status == 200
        await eventually(removal_refused, what="a replay after the reconnect, refused again")

        await _sqlite(translator).db.execute("PRAGMA query_only = OFF")

        async def drained() -> bool:
            return await translator.store.outbox_depth("ro-1") == 0

        await eventually(drained, what="the outbox drained once the store can be written again")
        events = await rest.get(f"/emulator/telemetry?deviceId=ro-1&after={start}")
        readings = [
            int(e["body"]["temperature"]) - 1000 for e in events["value"] if "temperature" in e["body"]
        ]
        assert readings == list(range(5)), "each kept message delivered once, in order"


async def test_a_refused_notification_is_not_taken_for_a_repeat(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    """A notification the translator cannot keep (hub away, store failing) is refused (no ACK). The change
    filter must not count its value as forwarded: before, the device's next notification of the same value
    looked like a repeat, was acknowledged as "nothing to send", and the value never reached the hub."""
    async with simulated(translator, "rep-1", values={TEMPERATURE: 21.5}, con_notifications=True) as device:
        await session_connected(translator, "rep-1")

        async def observing() -> bool:
            return any(TEMPERATURE in paths for paths in device.observed)

        await eventually(observing, what="the observation of the temperature")
        start = await log_position(rest)
        status, _ = await rest.request("POST", "/emulator/faults/outage", {"seconds": 60})
        assert status == 200
        errors = _store_errors(translator)
        await _sqlite(translator).db.execute("PRAGMA query_only = ON")  # writes fail, as on a full disk
        device.set_value(TEMPERATURE, 30.0)

        async def refused() -> bool:
            return _store_errors(translator) > errors

        await eventually(refused, what="the notification refused by the failing store")
        await _sqlite(translator).db.execute("PRAGMA query_only = OFF")
        device.set_value(TEMPERATURE, 30.0)  # the device tells it again

        async def kept() -> bool:
            return await translator.store.outbox_depth("rep-1") >= 1

        await eventually(kept, what="the value kept in the outbox this time")
        await rest.request("POST", "/emulator/faults/clear")
        await telemetry_matching(
            rest, "rep-1", lambda e: e["body"].get("temperature") == 30.0, after=start, timeout=30
        )
