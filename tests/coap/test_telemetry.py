"""Telemetry into the sink over real UDP: Send, plain CBOR ingest, notifications, delivery guarantees."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import cbor2

from tests.coap.conftest import FAST
from tests.coap.support import RecordingSink, UdpClient, wait_until
from translator.coap import Lwm2mServer, NamedRecord, Outcome, TelemetrySource, wire
from translator.coap.errors import Code
from translator.coap.simulator import SimulatedDevice
from translator.lwm2m import ContentFormat, Path, Record

LINKS = b"</3/0>,</3303/0>"


async def _registered_client(server: Lwm2mServer, ep: str = "raw") -> UdpClient:
    client = await UdpClient.connect(server.port)
    reply = await client.request(
        Code.POST, ["rd"], query=[f"ep={ep}", "lwm2m=1.1"], content_format=40, payload=LINKS
    )
    assert reply.code == Code.CREATED
    return client


async def test_send_json_and_cbor(server: Lwm2mServer, sink: RecordingSink) -> None:
    async with SimulatedDevice("sender", server.address) as dev:
        await dev.register()
        for cf in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR, ContentFormat.LWM2M_CBOR):
            response = await dev.send([Path(3303, 0, 5700)], content_format=cf)
            assert str(response.code).startswith("2.04"), cf
        sends = [b for b in sink.batches if b[2] is TelemetrySource.SEND]
        assert len(sends) == 3 and all(b[3] for b in sends)  # confirmable
        for _, records, _, _ in sends:
            assert records[0] == Record(Path(3303, 0, 5700), 21.5, records[0].time)
        await dev.send([Path(3, 0, 9)], confirmable=False)
        await wait_until(lambda: len(sink.batches) == 4, what="NON send")
        assert sink.batches[-1][3] is False


async def test_plain_cbor_ingest(server: Lwm2mServer, sink: RecordingSink) -> None:
    client = await UdpClient.connect(server.port)
    try:
        payload = cbor2.dumps({"temperature": 21.5, "door": True, "t": 1700000000})
        reply = await client.request(
            Code.POST, ["ingest"], query=["ep=Sensor 7"], content_format=60, payload=payload
        )
        assert reply.code == Code.CHANGED
        device, records, source, _confirmable = sink.batches[-1]
        assert (
            device.endpoint == "Sensor 7"
            and device.device_id == "x--_sensor_0327"
            and source is TelemetrySource.INGEST
        )
        assert records == [
            NamedRecord("temperature", 21.5, 1700000000.0),
            NamedRecord("door", True, 1700000000.0),
        ]
        reply = await client.request(Code.POST, ["ingest"], content_format=60, payload=payload)
        assert reply.code == Code.BAD_REQUEST  # no ep
        reply = await client.request(Code.POST, ["ingest"], query=["ep=s"], content_format=110, payload=b"{}")
        assert reply.code == Code.UNSUPPORTED_CONTENT_FORMAT
    finally:
        client.close()


async def test_ack_only_after_sink_confirms(server: Lwm2mServer, sink: RecordingSink) -> None:
    client = await _registered_client(server)
    try:
        sink.mode = "future"
        body = b'[{"n":"/3303/0/5700","v":20}]'
        mid = client.next_mid()
        request = wire.encode(
            wire.CON,
            Code.POST,
            mid,
            b"\x07",
            [(wire.OPT_URI_PATH, b"dp"), (wire.OPT_CONTENT_FORMAT, wire.uint(110))],
            body,
        )
        client.send(request)
        await wait_until(lambda: sink.held, what="sink call")
        await client.nothing(0.2)  # not safe yet: no answer
        client.send(request)  # a retransmission while pending: dropped, not delivered twice
        await client.nothing(0.1)
        sink.held[0].set_result(Outcome.PUBLISHED)
        reply = await client.recv()
        assert (reply.mtype, reply.code, reply.mid) == (wire.ACK, Code.CHANGED, mid)
        client.send(request)  # a late duplicate: the stored answer again
        again = await client.recv()
        assert (again.code, again.mid) == (Code.CHANGED, mid)
        assert len(sink.batches) == 1
        # a sink that never confirms: 5.03 after sink_timeout, Max-Age 1
        reply = await client.request(Code.POST, ["dp"], content_format=110, payload=body, timeout=3.0)
        assert reply.code == Code.SERVICE_UNAVAILABLE and reply.max_age == 1
        # a failing sink
        sink.held[-1].set_exception(RuntimeError("hub down"))
        sink.mode = "backpressure"
        reply = await client.request(Code.POST, ["dp"], content_format=110, payload=body)
        assert reply.code == Code.SERVICE_UNAVAILABLE and reply.max_age == 7
    finally:
        client.close()


async def test_slow_path_has_the_same_guarantees(sink: RecordingSink) -> None:
    async with Lwm2mServer(replace(FAST, hot_path=False), sink) as srv:
        client = await _registered_client(srv)
        try:
            sink.mode = "backpressure"
            reply = await client.request(
                Code.POST, ["dp"], content_format=110, payload=b'[{"n":"/3/0/9","v":1}]'
            )
            assert reply.code == Code.SERVICE_UNAVAILABLE and reply.max_age == 7
            sink.mode = "none"
            reply = await client.request(
                Code.POST, ["dp"], content_format=110, payload=b'[{"n":"/3/0/9","v":1}]'
            )
            assert reply.code == Code.CHANGED and sink.records() == [Record(Path(3, 0, 9), 1)]
            assert srv.stats()["hot"] == 0
        finally:
            client.close()


async def test_notification_ordering_on_the_wire(server: Lwm2mServer, sink: RecordingSink) -> None:
    """A raw client answers the Observe; stale notifications are dropped, unknown tokens reset."""
    client = await _registered_client(server, "wire-dev")
    try:
        observing = asyncio.ensure_future(server.devices.observe("wire-dev", Path(3303, 0, 5700)))
        get = await client.recv()
        assert get.code == Code.GET and get.observe == 0 and get.uri_path == ["3303", "0", "5700"]
        assert get.accept is not None
        text = wire.uint(ContentFormat.TEXT)
        client.send(
            wire.encode(
                wire.ACK,
                Code.CONTENT,
                get.mid,
                get.token,
                [(wire.OPT_OBSERVE, wire.uint(5)), (wire.OPT_CONTENT_FORMAT, text)],
                b"20.5",
            )
        )
        handle = await asyncio.wait_for(observing, 3.0)
        assert handle.records == (Record(Path(3303, 0, 5700), 20.5),)

        def notify(seq: int, value: bytes, mtype: int = wire.NON, token: bytes = get.token) -> int:
            mid = client.next_mid()
            client.send(
                wire.encode(
                    mtype,
                    Code.CONTENT,
                    mid,
                    token,
                    [(wire.OPT_OBSERVE, wire.uint(seq)), (wire.OPT_CONTENT_FORMAT, text)],
                    value,
                )
            )
            return mid

        notify(7, b"21")
        notify(6, b"19")  # reordered: older than 7
        mid = notify(8, b"22", wire.CON)
        ack = await client.recv()
        assert (ack.mtype, ack.code, ack.mid) == (wire.ACK, 0, mid)
        await wait_until(lambda: len(sink.records(TelemetrySource.NOTIFY)) == 3, what="notifications")
        assert [r.value for r in sink.records(TelemetrySource.NOTIFY)] == [20.5, 21.0, 22.0]
        stray = notify(3, b"1", token=b"\x99\x99")
        rst = await client.recv()
        assert (rst.mtype, rst.mid) == (wire.RST, stray)
    finally:
        client.close()


async def test_only_an_outcome_is_acknowledged(sink: RecordingSink) -> None:
    """The one place that decides 2.04 (sink.acknowledged): a sink answering anything but an Outcome —
    None now, or a future that yields None — gets 5.00 on the hot and the aiocoap path, never 2.04."""
    body = b'[{"n":"/3/0/9","v":1}]'
    for hot in (True, False):
        async with Lwm2mServer(replace(FAST, hot_path=hot), sink) as srv:
            client = await _registered_client(srv)
            try:
                sink.mode = "broken"
                reply = await client.request(Code.POST, ["dp"], content_format=110, payload=body)
                assert reply.code == Code.INTERNAL_SERVER_ERROR, (hot, reply.code)
                sink.mode = "future"
                pending = asyncio.ensure_future(
                    client.request(Code.POST, ["dp"], content_format=110, payload=body, timeout=5.0)
                )
                await wait_until(lambda: sink.held and not sink.held[-1].done(), what="sink call")
                sink.held[-1].set_result(None)  # type: ignore[arg-type]
                reply = await pending
                assert reply.code == Code.INTERNAL_SERVER_ERROR, (hot, reply.code)
                sink.mode = "none"  # a deliberate Outcome.NOTHING is acknowledged
                reply = await client.request(Code.POST, ["dp"], content_format=110, payload=body)
                assert reply.code == Code.CHANGED
            finally:
                client.close()
                sink.held.clear()
