"""The simulator as the LwM2M 1.2 client: notifications follow the written attributes, and a composite
observation notifies every member whenever any member fires (CLIENTS.md)."""

from __future__ import annotations

import asyncio

from tests.coap.support import RecordingSink, wait_until
from translator.coap import Lwm2mServer, TelemetrySource
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.lwm2m import Path, Record

TEMPERATURE = Path(3303, 0, 5700)
MINIMUM = Path(3303, 0, 5601)
BATTERY = Path(3, 0, 9)


def _notified(sink: RecordingSink, record: Record) -> int:
    return sink.records(TelemetrySource.NOTIFY).count(record)


async def test_pmin_holds_a_change_and_st_ignores_a_small_one(
    server: Lwm2mServer, sink: RecordingSink
) -> None:
    async with SimulatedDevice("attr-1", server.address, options=SimulatorOptions(attributes=True)) as dev:
        await dev.register()
        await server.devices.write_attributes("attr-1", TEMPERATURE, {"pmin": 1, "st": 0.5})
        await server.devices.observe("attr-1", TEMPERATURE)
        observed_at = asyncio.get_running_loop().time()
        dev.set_value(TEMPERATURE, 21.7)  # 0.2 from the last notified 21.5: below st, never notified
        dev.set_value(TEMPERATURE, 23.0)  # crosses st, but only after pmin
        await wait_until(lambda: _notified(sink, Record(TEMPERATURE, 23.0)), what="the held notification")
        assert asyncio.get_running_loop().time() - observed_at >= 0.9
        assert not _notified(sink, Record(TEMPERATURE, 21.7))


async def test_a_composite_notifies_every_member_when_one_fires(
    server: Lwm2mServer, sink: RecordingSink
) -> None:
    async with SimulatedDevice("attr-2", server.address, options=SimulatorOptions(attributes=True)) as dev:
        await dev.register()
        await server.devices.observe_composite("attr-2", [MINIMUM, BATTERY])
        assert _notified(sink, Record(MINIMUM, 20.0)) == 1  # the first answer
        dev.set_value(BATTERY, 55)
        await wait_until(lambda: _notified(sink, Record(BATTERY, 55)), what="the composite notification")
        assert _notified(sink, Record(MINIMUM, 20.0)) == 2  # unchanged, sent along
        assert dev.notifications == 1
