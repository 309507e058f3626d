"""DTLS 1.2 with per-device PSKs, driven by libcoap's coap-client-openssl (a DTLS client nobody here wrote)
and the project's simulator; the plain port next to it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from pathlib import Path as FsPath

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.coap.conftest import FAST
from tests.coap.support import RecordingSink, UdpClient, wait_until
from tests.pki import Issuer, make_ca, make_device_cert
from translator.coap import Lwm2mServer, TelemetrySource, wire
from translator.coap.credentials import MemoryCredentials, PskCredential
from translator.coap.errors import Code
from translator.coap.simulator import SimulatedDevice, SimulatorOptions, run_fleet
from translator.lwm2m import Path, Record

COAP_DTLS_CLIENT = shutil.which("coap-client-openssl")
needs_client = pytest.mark.skipif(
    COAP_DTLS_CLIENT is None, reason="libcoap3-bin (coap-client-openssl) not installed"
)
KEY = b"dtls-test-key-0123456789"
DTLS = replace(FAST, dtls_port=0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def coap_dtls(identity: str, key: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    assert COAP_DTLS_CLIENT is not None
    return await asyncio.to_thread(
        subprocess.run,
        [COAP_DTLS_CLIENT, "-B", "5", "-u", identity, "-k", key.decode(), *args],
        capture_output=True,
        text=True,
        timeout=15,
    )


@pytest.fixture
def credentials() -> MemoryCredentials:
    return MemoryCredentials([PskCredential("id-dev1", KEY, "dev1"), PskCredential("id-dev2", KEY, "dev2")])


@pytest.fixture
async def secured(sink: RecordingSink, credentials: MemoryCredentials) -> AsyncIterator[Lwm2mServer]:
    async with Lwm2mServer(DTLS, sink, credentials=credentials) as running:
        yield running


def _dtls_base(server: Lwm2mServer) -> str:
    assert server.dtls is not None
    return f"coaps://127.0.0.1:{server.dtls.port}"


@needs_client
async def test_register_and_send_over_dtls(secured: Lwm2mServer, sink: RecordingSink) -> None:
    port = _free_port()
    base = _dtls_base(secured)
    done = await coap_dtls(
        "id-dev1", KEY, "-p", str(port), "-m", "post", "-t", "40", "-e", "</3303/0>",
        f"{base}/rd?ep=dev1&lt=300&lwm2m=1.1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reg = secured.registration("dev1")
    assert reg is not None and 3303 in reg.objects.objects
    # Another source port, another handshake: the Send is attributed by the identity, not the address.
    done = await coap_dtls(
        "id-dev1", KEY, "-p", str(_free_port()), "-m", "post", "-t", "110", "-e",
        '[{"bn":"/3303/0/","n":"5700","v":21.5}]', f"{base}/dp",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    await wait_until(lambda: sink.records(TelemetrySource.SEND), what="records")
    device, records, _, confirmable = sink.batches[-1]
    assert device.endpoint == "dev1" and device.authenticated and confirmable
    assert records == [Record(Path(3303, 0, 5700), 21.5)]


@needs_client
async def test_wrong_key_registers_nothing(secured: Lwm2mServer) -> None:
    done = await coap_dtls(
        "id-dev1", b"not-the-right-key-000000", "-m", "post", "-t", "40", "-e", "</3303/0>",
        f"{_dtls_base(secured)}/rd?ep=dev1&lt=300",
    )  # fmt: skip
    assert "2.01" not in done.stdout
    assert secured.registration("dev1") is None
    # The client's Finished does not decrypt: DTLS drops such records silently (RFC 6347 §4.1.2.7), so the
    # handshake never opens a session and is dropped at its timeout.
    assert secured.dtls is not None and len(secured.dtls.table) == 0
    assert secured.dtls.table.counters["handshakes"] == 0


@needs_client
async def test_identity_registers_only_its_endpoint(secured: Lwm2mServer) -> None:
    done = await coap_dtls(
        "id-dev1", KEY, "-m", "post", "-t", "40", "-e", "</3303/0>",
        f"{_dtls_base(secured)}/rd?ep=dev2&lt=300",
    )  # fmt: skip
    assert "4.03" in done.stdout + done.stderr
    assert secured.registration("dev2") is None


async def _dtls_device(server: Lwm2mServer, name: str, identity: str, key: bytes = KEY) -> SimulatedDevice:
    assert server.dtls is not None
    dev = SimulatedDevice(
        name, ("127.0.0.1", server.dtls.port), options=SimulatorOptions(psk=(identity, key))
    )
    await dev.start()
    return dev


async def test_simulator_over_dtls_downlinks_notifications_and_rebinding(
    secured: Lwm2mServer, sink: RecordingSink
) -> None:
    dev = await _dtls_device(secured, "dev1", "id-dev1")
    try:
        assert str((await dev.register()).code).startswith("2.01")
        records = await secured.devices.read("dev1", Path(3303, 0, 5700))
        assert records == [Record(Path(3303, 0, 5700), 21.5)]
        handle = await secured.devices.observe("dev1", Path(3303, 0, 5700))
        assert handle.records == (Record(Path(3303, 0, 5700), 21.5),)
        dev.set_value(Path(3303, 0, 5700), 22.0)
        await wait_until(lambda: len(sink.records(TelemetrySource.NOTIFY)) >= 2, what="notification")
        # A NAT rebinding under DTLS: a new port, a new handshake; the registration does not move, and
        # notifications, Sends and downlinks keep working through the new session.
        await dev.rebind()
        dev.values[Path(3303, 0, 5700)] = 23.0
        assert str((await dev.send([Path(3303, 0, 5700)])).code).startswith("2.04")
        assert [r.value for r in sink.records(TelemetrySource.SEND)] == [23.0]
        dev.set_value(Path(3303, 0, 5700), 24.0)
        await wait_until(
            lambda: 24.0 in [r.value for r in sink.records(TelemetrySource.NOTIFY)], what="notify"
        )
        assert await secured.devices.read("dev1", Path(3, 0, 9)) == [Record(Path(3, 0, 9), 100)]
        assert secured.dtls is not None and len(secured.dtls.table) == 1
    finally:
        await dev.close()


async def test_plain_port_cannot_touch_a_secured_device(secured: Lwm2mServer, sink: RecordingSink) -> None:
    dev = await _dtls_device(secured, "dev1", "id-dev1")
    plain = await UdpClient.connect(secured.port)
    try:
        assert str((await dev.register()).code).startswith("2.01")
        reg = secured.registration("dev1")
        assert reg is not None
        # Register, ingest, Update, De-register and Send as dev1 (or dev2, secured too) on the plain port.
        for endpoint in ("dev1", "dev2"):
            reply = await plain.request(
                Code.POST, ["rd"], query=[f"ep={endpoint}", "lt=300"], content_format=40, payload=b"</3303/0>"
            )
            assert reply.code == Code.FORBIDDEN, endpoint
            reply = await plain.request(Code.POST, ["ingest"], query=[f"ep={endpoint}"], content_format=60,
                                        payload=cbor2.dumps({"t": 1.0}))  # fmt: skip
            assert reply.code == Code.FORBIDDEN, endpoint
        assert (await plain.request(Code.POST, ["rd", reg.reg_id], query=["lt=60"])).code == Code.FORBIDDEN
        assert (await plain.request(Code.DELETE, ["rd", reg.reg_id])).code == Code.FORBIDDEN
        reply = await plain.request(
            Code.POST, ["dp"], content_format=110, payload=b'[{"bn":"/3303/0/","n":"5700","v":99}]'
        )
        assert reply.code == Code.NOT_FOUND  # a Send is attributed by address: no plain address is dev1's
        assert secured.registration("dev1") == reg and not sink.batches
        # An endpoint without credentials still registers on the plain port (open posture of FAST).
        reply = await plain.request(
            Code.POST, ["rd"], query=["ep=open1", "lt=300"], content_format=40, payload=b"</3303/0>"
        )
        assert reply.code == Code.CREATED
    finally:
        plain.close()
        await dev.close()


async def test_credentials_edited_at_run_time(secured: Lwm2mServer, credentials: MemoryCredentials) -> None:
    dev = await _dtls_device(secured, "dev3", "id-dev3")
    try:
        with pytest.raises(TimeoutError):  # unknown identity: the handshake fails, nothing registers
            async with asyncio.timeout(2.0):
                await dev.register()
        assert secured.registration("dev3") is None
    finally:
        await dev.close()
    credentials.put(PskCredential("id-dev3", KEY, "dev3"))  # no restart
    dev = await _dtls_device(secured, "dev3", "id-dev3")
    try:
        assert str((await dev.register()).code).startswith("2.01")
    finally:
        await dev.close()


async def test_simulated_fleet_over_dtls(sink: RecordingSink) -> None:
    names = [f"fleet-{i:05d}" for i in range(3)]
    credentials = MemoryCredentials([PskCredential(name, KEY, name) for name in names])
    async with Lwm2mServer(DTLS, sink, credentials=credentials) as server:
        assert server.dtls is not None
        sent = await run_fleet(
            ("127.0.0.1", server.dtls.port), 3, prefix="fleet", interval=0.3, duration=2.0, psk_key=KEY
        )
        assert sent >= 3
        assert {device.endpoint for device, *_ in sink.batches} == set(names)


def _at_least(counters: dict[str, int], name: str, value: float) -> bool:
    return counters[name] >= value


async def test_spoofed_client_hello_flood_over_udp_keeps_no_state(secured: Lwm2mServer) -> None:
    """10k ClientHellos from 200 source ports (a spoofer's view: it never sees the HelloVerifyRequests):
    each is answered statelessly, no handshake state is kept, and a real device still gets in."""
    from translator.coap.dtls.openssl import ClientContext

    assert secured.dtls is not None
    client = ClientContext(b"id-dev1", KEY).connection()
    client.handshake()
    hello = client.outgoing()
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(200)]
    try:
        for sock in senders:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
        target = ("127.0.0.1", secured.dtls.port)
        table = secured.dtls.table
        for round_ in range(50):
            for sock in senders:
                with contextlib.suppress(BlockingIOError):
                    sock.sendto(hello, target)
            # Paced by the answers (the kernel would drop what the server has no time to read).
            expected = 0.8 * len(senders) * (round_ + 1)  # the kernel may drop some under load
            await wait_until(
                partial(_at_least, table.counters, "hello_verify", expected), timeout=10.0, what="answers"
            )
            assert table.handshaking == 0 and len(table) == 0, round_
        assert table.handshaking == 0 and len(table) == 0
    finally:
        for sock in senders:
            sock.close()
    dev = await _dtls_device(secured, "dev1", "id-dev1")
    try:
        assert str((await dev.register()).code).startswith("2.01")
    finally:
        await dev.close()


def _server_cert(directory: FsPath, issuer: Issuer) -> tuple[FsPath, FsPath]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(issuer.key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_device_certificate_names_its_endpoint(tmp_path: FsPath, sink: RecordingSink) -> None:
    devices_ca = make_ca(tmp_path, "devices-ca")
    server_ca = make_ca(tmp_path, "server-ca")
    server_cert, server_key = _server_cert(tmp_path, server_ca)
    settings = replace(
        DTLS, dtls_certificate=server_cert, dtls_private_key=server_key, dtls_client_ca=devices_ca.path
    )
    stranger_ca = make_ca(tmp_path, "stranger-ca")
    psk = MemoryCredentials([PskCredential("id-dev1", KEY, "dev1")])
    async with Lwm2mServer(settings, sink, credentials=psk) as server:
        assert server.dtls is not None
        target = ("127.0.0.1", server.dtls.port)
        cert, key = make_device_cert(tmp_path, devices_ca, "cert-dev1")
        dev = SimulatedDevice(
            "cert-dev1", target, options=SimulatorOptions(certificate=(cert, key, server_ca.path))
        )
        await dev.start()
        try:
            assert str((await dev.register()).code).startswith("2.01")
            reg = server.registration("cert-dev1")
            assert reg is not None
            assert await server.devices.read("cert-dev1", Path(3, 0, 9)) == [Record(Path(3, 0, 9), 100)]
        finally:
            await dev.close()
        # The certificate names cert-dev1: it cannot register another endpoint.
        other = SimulatedDevice(
            "cert-dev2", target, options=SimulatorOptions(certificate=(cert, key, server_ca.path))
        )
        await other.start()
        try:
            assert str((await other.register()).code).startswith("4.03")
        finally:
            await other.close()
        # A certificate from another CA: no session, nothing registered.
        cert, key = make_device_cert(tmp_path, stranger_ca, "cert-dev3")
        stranger = SimulatedDevice(
            "cert-dev3", target, options=SimulatorOptions(certificate=(cert, key, server_ca.path))
        )
        await stranger.start()
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(2.0):
                    await stranger.register()
            assert server.registration("cert-dev3") is None
        finally:
            await stranger.close()
        # PSK devices keep working next to certificates (no CertificateRequest in a PSK handshake).
        psk_device = await _dtls_device(server, "dev1", "id-dev1")
        try:
            assert str((await psk_device.register()).code).startswith("2.01")
        finally:
            await psk_device.close()


async def test_keys_never_reach_the_log(
    secured: Lwm2mServer, credentials: MemoryCredentials, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        good = await _dtls_device(secured, "dev1", "id-dev1")
        wrong = await _dtls_device(secured, "dev2", "id-dev2", b"wrong-key-for-dev2-00000")
        try:
            assert str((await good.register()).code).startswith("2.01")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1.0):
                    await wrong.register()
        finally:
            await good.close()
            await wrong.close()
        logging.getLogger("test").info("%r", await credentials.psk("id-dev1"))
    assert "id-dev1" in caplog.text  # identities are logged...
    for secret in (KEY, b"wrong-key-for-dev2-00000"):  # ...keys are not, in any spelling
        assert secret.decode() not in caplog.text and secret.hex() not in caplog.text


@needs_client
async def test_coap_client_openssl_with_a_device_certificate(tmp_path: FsPath, sink: RecordingSink) -> None:
    devices_ca = make_ca(tmp_path, "devices-ca")
    server_ca = make_ca(tmp_path, "server-ca")
    server_cert, server_key = _server_cert(tmp_path, server_ca)
    settings = replace(
        DTLS, dtls_certificate=server_cert, dtls_private_key=server_key, dtls_client_ca=devices_ca.path
    )
    cert, key = make_device_cert(tmp_path, devices_ca, "libcoap-cert-1")
    async with Lwm2mServer(settings, sink, credentials=MemoryCredentials()) as server:
        assert server.dtls is not None
        assert COAP_DTLS_CLIENT is not None
        done = await asyncio.to_thread(
            subprocess.run,
            [
                COAP_DTLS_CLIENT, "-B", "5", "-c", str(cert), "-j", str(key), "-R", str(server_ca.path),
                "-m", "post", "-t", "40", "-e", "</3303/0>",
                f"coaps://127.0.0.1:{server.dtls.port}/rd?ep=libcoap-cert-1&lt=300",
            ],
            capture_output=True, text=True, timeout=15,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert server.registration("libcoap-cert-1") is not None


async def test_a_secured_devices_token_from_a_plain_address_is_ignored(
    secured: Lwm2mServer, sink: RecordingSink
) -> None:
    """Whoever learns a DTLS device's observation token cannot notify for it from plain UDP (nor move its
    registration there, as a NAT rebinding would)."""
    dev = await _dtls_device(secured, "dev1", "id-dev1")
    plain = await UdpClient.connect(secured.port)
    try:
        assert str((await dev.register()).code).startswith("2.01")
        await secured.devices.observe("dev1", Path(3303, 0, 5700))
        [observation] = secured._table.devices["dev1"].observations.values()
        before = secured.registration("dev1")
        forged = wire.encode(
            wire.NON, 0x45, 0x7777, observation.token, [(6, b"\x09"), (12, b"\x00")], b"99"
        )  # 2.05 Content, Observe 9, text/plain "99"
        plain.send(forged)
        await secured.devices.read("dev1", Path(3, 0, 9))  # a round trip: the forged datagram was handled
        assert 99 not in [r.value for r in sink.records(TelemetrySource.NOTIFY)]
        assert secured.registration("dev1") == before
    finally:
        plain.close()
        await dev.close()
