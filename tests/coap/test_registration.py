"""The registration interface over real UDP sockets: life cycle, expiry, bad input, captured clients."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path as FsPath

import pytest

from tests.coap.conftest import FAST
from tests.coap.support import RecordingSink, UdpClient, wait_until
from tests.conftest import SHARED
from translator.coap import CoapSettings, DeregisterReason, Lwm2mServer, wire
from translator.coap.credentials import MemoryCredentials
from translator.coap.errors import Code
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.lwm2m import Path

VECTORS = SHARED / "vectors" / "lwm2m-wire.jsonl"
LINKS = b'</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</3/0>,</3303/0>'


async def test_register_update_deregister(server: Lwm2mServer, sink: RecordingSink) -> None:
    client = await UdpClient.connect(server.port)
    try:
        reply = await client.request(
            Code.POST,
            ["rd"],
            query=["ep=dev1", "lt=60", "lwm2m=1.1", "b=U"],
            content_format=40,
            payload=LINKS,
        )
        assert reply.code == Code.CREATED and reply.mtype == wire.ACK
        reg = server.registration("dev1")
        assert reg is not None and reg.lifetime == 60 and reg.version == "1.1" and not reg.queue_mode
        assert reg.objects.content_formats == (110,) and reg.objects.objects[1] == "1.1"
        await wait_until(lambda: sink.registered, what="on_registered")
        location = ["rd", reg.reg_id]
        reply = await client.request(Code.POST, location, query=["lt=120"])
        assert reply.code == Code.CHANGED
        assert server.registration("dev1").lifetime == 120  # type: ignore[union-attr]
        reply = await client.request(Code.POST, location, content_format=40, payload=b"</3/0>,</6/0>")
        assert reply.code == Code.CHANGED and 6 in server.registration("dev1").objects.objects  # type: ignore[union-attr]
        reply = await client.request(Code.DELETE, location)
        assert reply.code == Code.DELETED and server.registration("dev1") is None
        reply = await client.request(Code.POST, location)
        assert reply.code == Code.NOT_FOUND
        await wait_until(lambda: sink.deregistered, what="on_deregistered")
        assert sink.deregistered[0][1] is DeregisterReason.DEREGISTERED
        assert len(sink.updated) == 2
    finally:
        client.close()


async def test_lifetime_expiry(server: Lwm2mServer, sink: RecordingSink) -> None:
    client = await UdpClient.connect(server.port)
    try:
        reply = await client.request(
            Code.POST, ["rd"], query=["ep=short", "lt=1"], content_format=40, payload=LINKS
        )
        assert reply.code == Code.CREATED
        await wait_until(lambda: server.registration("short") is None, timeout=3.0, what="expiry")
        await wait_until(lambda: sink.deregistered, what="on_deregistered")
        assert sink.deregistered[0][1] is DeregisterReason.EXPIRED
    finally:
        client.close()


async def test_reregister_replaces_and_follows_new_port(server: Lwm2mServer, sink: RecordingSink) -> None:
    async with SimulatedDevice("moving", server.address) as dev:
        await dev.register()
        first = server.registration("moving")
        await server.devices.observe("moving", Path(3303, 0, 5700))
        assert server.devices.observations("moving")
    async with SimulatedDevice("moving", server.address) as dev2:  # a new socket: a new port
        response = await dev2.register()
        second = server.registration("moving")
        assert first is not None and second is not None
        assert (
            second.reg_id != first.reg_id
            and second.peer != first.peer
            and str(response.code).startswith("2.01")
        )
        assert server.devices.observations("moving") == []  # cancelled with the old registration
        assert len(server.store) == 1
        assert (await server.devices.read("moving", Path(3, 0, 0)))[0].value == "iotc-translator"


@pytest.mark.parametrize(
    ("query", "content_format", "payload", "code"),
    [
        (["lt=60"], 40, LINKS, Code.BAD_REQUEST),  # missing ep
        (["ep=x", "lwm2m=9.9"], 40, LINKS, Code.PRECONDITION_FAILED),
        (["ep=x", "lt=zero"], 40, LINKS, Code.BAD_REQUEST),
        (["ep=x"], 40, b'</3/0>;ver="1.1', Code.BAD_REQUEST),  # malformed link format
        (["ep=x"], 40, b"not links", Code.BAD_REQUEST),
        (["ep=x"], 9999, LINKS, Code.UNSUPPORTED_CONTENT_FORMAT),
        (["ep=x"], 40, b"</3/0>," + b"</3303/0>," * 300, Code.REQUEST_ENTITY_TOO_LARGE),
    ],
)
async def test_bad_registrations(
    server: Lwm2mServer, query: list[str], content_format: int, payload: bytes, code: Code
) -> None:
    client = await UdpClient.connect(server.port)
    try:
        reply = await client.request(
            Code.POST, ["rd"], query=query, content_format=content_format, payload=payload
        )
        assert reply.code == code, (reply.code, reply.payload)
        ok = await client.request(Code.POST, ["rd"], query=["ep=fine"], content_format=40, payload=LINKS)
        assert ok.code == Code.CREATED  # still serving
    finally:
        client.close()


async def test_bad_telemetry_and_garbage(server: Lwm2mServer, sink: RecordingSink) -> None:
    client = await UdpClient.connect(server.port)
    try:
        for junk in (b"\x00", b"\xff" * 40, b"hello world", b"\x80\x02\x00\x07"):
            client.send(junk)
        await client.nothing(0.3)  # not CoAP: ignored, no crash
        reply = await client.request(Code.POST, ["dp"], content_format=110, payload=b"[]")
        assert reply.code == Code.NOT_FOUND  # a Send from an unregistered address
        reply = await client.request(Code.POST, ["rd"], query=["ep=dev"], content_format=40, payload=LINKS)
        assert reply.code == Code.CREATED
        cases = [
            (110, b"{not json", Code.BAD_REQUEST),
            (9999, b"[]", Code.UNSUPPORTED_CONTENT_FORMAT),
            (0, b"21.5", Code.UNSUPPORTED_CONTENT_FORMAT),
            (110, b"[" + b'{"n":"/3/0/0","vs":"x"},' * 200 + b"]", Code.REQUEST_ENTITY_TOO_LARGE),
        ]
        for cf, payload, code in cases:
            reply = await client.request(Code.POST, ["dp"], content_format=cf, payload=payload)
            assert reply.code == code, (cf, reply.code)
        reply = await client.request(
            Code.POST, ["ingest"], query=["ep=s1"], content_format=60, payload=b"\xff"
        )
        assert reply.code == Code.BAD_REQUEST
        reply = await client.request(Code.GET, ["nothing", "here"])
        assert reply.code == Code.NOT_FOUND
        reply = await client.request(Code.GET, ["rd"])
        assert reply.code == Code.METHOD_NOT_ALLOWED
        reply = await client.request(
            Code.POST, ["dp"], content_format=110, payload=b'[{"n":"/3303/0/5700","v":1}]'
        )
        assert reply.code == Code.CHANGED
        assert sink.records()[-1].value == 1.0
    finally:
        client.close()


async def test_allow_list(sink: RecordingSink) -> None:
    settings = replace(FAST, auto_register=False, allow=("good",))
    async with Lwm2mServer(settings, sink) as srv:
        client = await UdpClient.connect(srv.port)
        try:
            bad = await client.request(Code.POST, ["rd"], query=["ep=evil"], content_format=40, payload=LINKS)
            assert bad.code == Code.FORBIDDEN
            good = await client.request(
                Code.POST, ["rd"], query=["ep=good"], content_format=40, payload=LINKS
            )
            assert good.code == Code.CREATED
        finally:
            client.close()


async def test_ipv6_listener(sink: RecordingSink) -> None:
    async with Lwm2mServer(CoapSettings(host="::1", port=0, tick=0.05), sink) as srv:
        client = await UdpClient.connect(srv.port, host="::1")
        try:
            reply = await client.request(Code.POST, ["rd"], query=["ep=v6"], content_format=40, payload=LINKS)
            assert reply.code == Code.CREATED
        finally:
            client.close()
    async with SimulatedDevice("v6sim", ("::1", 0), bind=("::1", 0), options=SimulatorOptions()) as dev:
        assert dev.port  # the simulator binds IPv6 too


def _register_vectors() -> list[dict[str, object]]:
    rows = [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]
    return [
        r
        for r in rows
        if r["direction"] == "client->server" and r["op"] in ("register", "update", "deregister")
    ]


@pytest.mark.skipif(not VECTORS.exists(), reason="shared vectors not present")
async def test_replay_captured_registrations(server: Lwm2mServer, sink: RecordingSink) -> None:
    """Raw Register/Update/De-register datagrams of Wakaama and Anjay, replayed byte for byte."""
    rows = _register_vectors()
    assert rows
    by_run: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_run.setdefault(str(row["run"]), []).append(row)
    for run, run_rows in by_run.items():
        client = await UdpClient.connect(server.port)
        location: list[str] | None = None
        try:
            for row in run_rows:
                data = bytes.fromhex(str(row["coap_hex"]))
                msg = wire.parse(data)
                assert msg is not None
                if row["op"] != "register" and location is not None:
                    # the capture's location was the probe server's (rd/rN): point it at ours
                    opts = [(wire.OPT_URI_PATH, seg.encode()) for seg in location]
                    if msg.content_format is not None:
                        opts.append((wire.OPT_CONTENT_FORMAT, wire.uint(msg.content_format)))
                    opts.extend((wire.OPT_URI_QUERY, q.encode()) for q in msg.uri_query)
                    data = wire.encode(
                        msg.mtype, msg.code, msg.mid, msg.token, sorted(opts, key=lambda o: o[0]), msg.payload
                    )
                client.send(data)
                reply = await client.recv()
                assert reply.mtype == wire.ACK and reply.mid == msg.mid and reply.token == msg.token
                expected = {"register": Code.CREATED, "update": Code.CHANGED, "deregister": Code.DELETED}[
                    str(row["op"])
                ]
                assert reply.code == expected, (run, row["exchange"], reply.code)
                if row["op"] == "register":
                    query = list(row["query"])  # type: ignore[call-overload]
                    ep = next(q[3:] for q in query if q.startswith("ep="))
                    reg = server.registration(ep)
                    assert reg is not None
                    assert reg.queue_mode == ("Q" in query or "b=UQ" in query)
                    location = ["rd", reg.reg_id]
                    if str(row["client"]) == "wakaama":
                        assert reg.objects.content_formats == (110,) and reg.objects.objects[31024] == "1.0"
                elif row["op"] == "deregister":
                    location = None
        finally:
            client.close()
    assert {r.endpoint for r in sink.registered} == {"wakaama-ep", "anjay-ep"}


async def test_a_second_server_on_the_same_port_fails_instead_of_sharing_it(
    sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiocoap binds with SO_REUSEPORT (tests switch it off in tests/conftest.py; switched back on here):
    without the server clearing it after its bind, a second server would bind the same port and silently
    take a share of the devices."""
    monkeypatch.setenv("AIOCOAP_REUSE_PORT", "1")
    async with Lwm2mServer(FAST, sink) as first:
        second = Lwm2mServer(replace(FAST, port=first.port), sink)
        with pytest.raises(OSError, match=r"[Aa]ddress already in use"):
            await second.start()
        await second.stop()


async def test_workers_share_the_coap_and_dtls_ports_and_only_they_do(
    sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve --workers`: servers made with share_port bind the same CoAP and DTLS ports (SO_REUSEPORT kept,
    the kernel spreads the peers), whatever aiocoap's switch says; a server that does not share cannot join
    them, even with the switch on (before: it bound with SO_REUSEPORT, cleared it only after, and took a
    share of the workers' devices)."""
    monkeypatch.setenv("AIOCOAP_REUSE_PORT", "0")  # tests/conftest.py's setting: the shared server wins
    shared = replace(FAST, dtls=True, dtls_port=0)
    credentials = MemoryCredentials()
    async with Lwm2mServer(shared, sink, credentials=credentials, share_port=True) as first:
        assert first.dtls is not None
        ports = replace(shared, port=first.port, dtls_port=first.dtls.port)
        async with Lwm2mServer(ports, sink, credentials=credentials, share_port=True) as second:
            assert (second.port, second.dtls and second.dtls.port) == (first.port, first.dtls.port)
            monkeypatch.setenv("AIOCOAP_REUSE_PORT", "1")
            alone = Lwm2mServer(replace(ports, dtls=False), sink)
            with pytest.raises(OSError, match=r"[Aa]ddress already in use"):
                await alone.start()
            await alone.stop()


async def test_the_receive_buffer_setting_reaches_the_socket(sink: RecordingSink) -> None:
    """coap.receive_buffer sizes the UDP socket's kernel buffer (Linux reports the size doubled)."""
    wanted = 1024 * 1024
    async with Lwm2mServer(replace(FAST, receive_buffer=wanted), sink) as server:
        sock = server.tap._sock
        assert sock is not None
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2 >= min(wanted, _rmem_max())


def _rmem_max() -> int:
    try:
        return int(FsPath("/proc/sys/net/core/rmem_max").read_text())
    except OSError:
        return 0
