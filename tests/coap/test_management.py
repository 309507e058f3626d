"""Every device-management operation against the simulator, over real UDP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.coap.support import RecordingSink, wait_until
from translator.coap import (
    DeadlineExpiredError,
    DeviceResponseError,
    Lwm2mServer,
    NotRegisteredError,
    TelemetrySource,
)
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.lwm2m import ContentFormat, Path, Record


async def _device(server: Lwm2mServer, name: str, **options: object) -> SimulatedDevice:
    dev = SimulatedDevice(name, server.address, options=SimulatorOptions(**options))  # type: ignore[arg-type]
    await dev.start()
    response = await dev.register()
    assert str(response.code).startswith("2.01")
    return dev


@pytest.fixture
async def device(server: Lwm2mServer) -> AsyncIterator[SimulatedDevice]:
    dev = await _device(server, "sim1", ct_hint=ContentFormat.SENML_JSON)
    yield dev
    await dev.close()


async def test_read_discover_write_execute(server: Lwm2mServer, device: SimulatedDevice) -> None:
    mgr = server.devices
    records = await mgr.read("sim1", Path(3303, 0))
    assert Record(Path(3303, 0, 5700), 21.5) in records
    value = await mgr.read("sim1", Path(3, 0, 9))
    assert value == [Record(Path(3, 0, 9), 100)]
    multi = await mgr.read("sim1", Path(3, 0, 6))
    assert [r.value for r in multi] == [1, 5]
    links = await mgr.discover("sim1", Path(3, 0))
    assert "/3/0/9" in {link.target for link in links}
    await mgr.write("sim1", Path(3, 0, 14), [Record(Path(3, 0, 14), "+02:00")])
    assert device.values[Path(3, 0, 14)] == "+02:00"
    await mgr.write(
        "sim1",
        Path(3303, 0),
        [Record(Path(3303, 0, 5601), 1.5), Record(Path(3303, 0, 5602), 30.0)],
        partial=True,
    )
    assert device.values[Path(3303, 0, 5601)] == 1.5 and device.values[Path(3303, 0, 5700)] == 21.5
    await mgr.write("sim1", Path(6, 0), [Record(Path(6, 0, 0), 1.0), Record(Path(6, 0, 1), 2.0)])
    assert device.values[Path(6, 0, 0)] == 1.0
    await mgr.execute("sim1", Path(3, 0, 4), "0='now',1")
    assert device.executed == [(Path(3, 0, 4), "0='now',1")]
    await mgr.write_attributes("sim1", Path(3303, 0, 5700), {"pmin": 1, "pmax": 5, "st": 0.5})
    links = await mgr.discover("sim1", Path(3303, 0, 5700))
    assert links[0].get("pmax") == "5" and links[0].get("st") == "0.5"
    with pytest.raises(DeviceResponseError) as err:
        await mgr.execute("sim1", Path(3, 0, 9))  # not executable
    assert err.value.code == 133
    with pytest.raises(DeviceResponseError) as err:
        await mgr.read("sim1", Path(3, 5))
    assert err.value.code == 132
    with pytest.raises(NotRegisteredError):
        await mgr.read("nobody", Path(3, 0))


async def test_create_and_delete(server: Lwm2mServer, device: SimulatedDevice) -> None:
    created = await server.devices.create("sim1", 3303, [Record(Path(3303, 1, 5700), 5.0)], instance_id=1)
    assert created == Path(3303, 1) and device.values[Path(3303, 1, 5700)] == 5.0
    await server.devices.delete("sim1", Path(3303, 1))
    assert Path(3303, 1, 5700) not in device.values


async def test_format_fallback_on_406(server: Lwm2mServer) -> None:
    # A 1.2 client that lacks LwM2M CBOR and SenML CBOR (like Wakaama): 4.06, then the next format.
    dev = await _device(
        server,
        "narrow",
        version="1.2",
        formats=frozenset({ContentFormat.TEXT, ContentFormat.TLV, ContentFormat.SENML_JSON}),
    )
    try:
        records = await server.devices.read("narrow", Path(3303, 0))
        assert Record(Path(3303, 0, 5700), 21.5) in records
        assert [m for m, _ in dev.requests].count("GET") == 3  # 11544 → 4.06, 112 → 4.06, 110 → 2.05
        await server.devices.read("narrow", Path(3303, 0))
        assert [m for m, _ in dev.requests].count("GET") == 4  # remembered
    finally:
        await dev.close()


async def test_read_composite_and_fallbacks(server: Lwm2mServer) -> None:
    paths = [Path(3303, 0, 5700), Path(3, 0, 9)]
    for name, mode, fetches in (
        ("comp-ok", "ok", 1),
        ("comp-no", "unsupported", 1),
        ("comp-silent", "silent", 1),
    ):
        dev = await _device(server, name, composite=mode)
        try:
            records = await server.devices.read_composite(name, paths)
            assert {r.path for r in records} == set(paths), name
            assert [m for m, _ in dev.requests].count("FETCH") == fetches
            if mode != "ok":  # remembered: the next one goes straight to single reads
                await server.devices.read_composite(name, paths)
                assert [m for m, _ in dev.requests].count("FETCH") == 1
        finally:
            await dev.close()


async def test_observe_notify_cancel(
    server: Lwm2mServer, sink: RecordingSink, device: SimulatedDevice
) -> None:
    handle = await server.devices.observe("sim1", Path(3303, 0, 5700))
    assert handle.records == (Record(Path(3303, 0, 5700), 21.5),)
    device.set_value(Path(3303, 0, 5700), 22.0)  # aiocoap coalesces triggers: one change at a time
    await wait_until(lambda: len(sink.records(TelemetrySource.NOTIFY)) >= 2, what="notification")
    device.set_value(Path(3303, 0, 5700), 23.0)
    await wait_until(lambda: len(sink.records(TelemetrySource.NOTIFY)) >= 3, what="notifications")
    assert [r.value for r in sink.records(TelemetrySource.NOTIFY)][-2:] == [22.0, 23.0]
    assert server.stats()["notifications"] >= 2
    assert await server.devices.cancel_observation("sim1", Path(3303, 0, 5700))
    await wait_until(lambda: not device.observed, what="device-side cancel")
    count = len(sink.batches)
    device.set_value(Path(3303, 0, 5700), 24.0)
    assert not await server.devices.cancel_observation("sim1", Path(3303, 0, 5700))
    await server.devices.read("sim1", Path(3, 0, 9))  # round trip: nothing else arrived meanwhile
    assert len(sink.batches) == count


async def test_observe_instance_con_notifications(server: Lwm2mServer, sink: RecordingSink) -> None:
    dev = await _device(server, "con-sim", con_notifications=True)
    try:
        await server.devices.observe("con-sim", Path(3303, 0))
        dev.set_value(Path(3303, 0, 5700), 30.0)
        await wait_until(
            lambda: Record(Path(3303, 0, 5700), 30.0) in sink.records(TelemetrySource.NOTIFY),
            what="CON notification",
        )
    finally:
        await dev.close()


async def test_observe_composite_and_fallback(server: Lwm2mServer, sink: RecordingSink) -> None:
    paths = [Path(3303, 0, 5700), Path(3, 0, 9)]
    dev = await _device(server, "oc-ok")
    try:
        handles = await server.devices.observe_composite("oc-ok", paths)
        assert len(handles) == 1 and handles[0].composite
        dev.set_value(Path(3, 0, 9), 55)
        await wait_until(
            lambda: Record(Path(3, 0, 9), 55) in sink.records(TelemetrySource.NOTIFY), what="composite"
        )
        assert await server.devices.cancel_observation("oc-ok", paths)
    finally:
        await dev.close()
    dev = await _device(server, "oc-silent", composite="silent")
    try:
        handles = await server.devices.observe_composite("oc-silent", paths)
        assert len(handles) == 2 and not handles[0].composite
        dev.set_value(Path(3, 0, 9), 66)
        await wait_until(
            lambda: Record(Path(3, 0, 9), 66) in sink.records(TelemetrySource.NOTIFY), what="fallback"
        )
    finally:
        await dev.close()


async def test_queue_mode(server: Lwm2mServer, sink: RecordingSink) -> None:
    def _listening(endpoint: str) -> bool | None:
        presence = server.devices.presence(endpoint)
        return None if presence is None else presence.listening

    def _held(endpoint: str) -> int | None:
        presence = server.devices.presence(endpoint)
        return None if presence is None else presence.held

    dev = await _device(server, "sleepy", queue_mode=True)
    try:
        reg = server.registration("sleepy")
        assert reg is not None and reg.queue_mode
        assert (await server.devices.read("sleepy", Path(3, 0, 9)))[
            0
        ].value == 100  # awake right after Register
        await dev.sleep()
        await wait_until(lambda: _listening("sleepy") is False, timeout=2.0, what="window to close")
        with pytest.raises(DeadlineExpiredError):
            await server.devices.read("sleepy", Path(3, 0, 9), deadline=0.2)
        import asyncio

        pending = asyncio.ensure_future(server.devices.read("sleepy", Path(3303, 0, 5700), deadline=5.0))
        pending2 = asyncio.ensure_future(server.devices.execute("sleepy", Path(3, 0, 4), deadline=5.0))
        await wait_until(lambda: _held("sleepy") == 2, what="both requests held")
        assert not pending.done() and dev.requests[-1][0] == "GET"
        response = await dev.wake()  # re-open on the same port and Update: the queue flushes
        assert str(response.code).startswith("2.04")
        assert (await asyncio.wait_for(pending, 5.0))[0].value == 21.5
        await asyncio.wait_for(pending2, 5.0)
        assert dev.executed[-1][0] == Path(3, 0, 4)
    finally:
        await dev.close()


async def test_queue_mode_one_zero_binding(server: Lwm2mServer) -> None:
    dev = await _device(server, "uq", version="1.0", queue_mode=True, binding_style="b")
    try:
        reg = server.registration("uq")
        assert reg is not None and reg.queue_mode and reg.binding == "UQ"
        assert await server.devices.read("uq", Path(3303, 0))  # TLV for 1.0
    finally:
        await dev.close()
