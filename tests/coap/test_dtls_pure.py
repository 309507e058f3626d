"""The DTLS session table without sockets: cookies, the flood of spoofed ClientHellos, §4.2.8, limits."""

from __future__ import annotations

import tracemalloc
from typing import Any

from cryptography.hazmat.bindings.openssl.binding import Binding

from translator.coap.credentials import PskCredential
from translator.coap.dtls import records
from translator.coap.dtls.openssl import ClientContext, Connection, Failure
from translator.coap.dtls.peers import is_virtual, virtual_peer
from translator.coap.dtls.sessions import DtlsLimits, Session, SessionTable

KEY = b"pure-test-key-0123456789"
ADDRESS = ("::ffff:127.0.0.1", 40000, 0, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A session table whose lookups resolve from a dict when `resolve()` is called."""

    def __init__(self, limits: DtlsLimits | None = None) -> None:
        self.clock = Clock()
        self.sent: list[tuple[bytes, Any]] = []
        self.delivered: list[tuple[bytes, Any]] = []
        self.lookups: list[tuple[Session, str]] = []
        self.client_error = ""
        self.keys = {"id1": PskCredential("id1", KEY, "dev1"), "id2": PskCredential("id2", KEY, "dev2")}
        self.table = SessionTable(
            transmit=lambda data, address: self.sent.append((data, address)),
            deliver=lambda data, peer: self.delivered.append((data, peer)),
            lookup=lambda session, identity: self.lookups.append((session, identity)),
            limits=limits,
            clock=self.clock,
        )

    def resolve(self) -> None:
        while self.lookups:
            session, identity = self.lookups.pop(0)
            self.table.resolved(session, self.keys.get(identity))

    def handshake(self, identity: str, address: Any, key: bytes = KEY, suite: bytes = b"") -> Connection:
        context = ClientContext(identity.encode(), key)
        if suite:
            context.ctx.set_cipher_list(suite + b":@SECLEVEL=0")
        client = context.connection()
        for _ in range(10):
            try:
                done = client.handshake()
            except Failure as error:  # the server's alert
                self.client_error = str(error)
                break
            data = client.outgoing()
            if data:
                self.table.receive(data, address)
            self.resolve()
            answers = [sent for sent, to in self.sent if to == address]
            self.sent.clear()
            for answer in answers:
                client.feed(answer)
            if done and not answers:
                break
        return client


def client_hello() -> bytes:
    client = ClientContext(b"id1", KEY).connection()
    client.handshake()
    return client.outgoing()


def test_binding_has_what_the_wrapper_uses() -> None:
    lib = Binding().lib
    for name in ("SSL_CTX_set_psk_server_callback", "SSL_CTX_set_psk_client_callback", "DTLSv1_listen"):
        assert hasattr(lib, name), name


def test_records_parsing() -> None:
    hello = client_hello()
    assert records.is_client_hello(hello)
    assert not records.is_client_hello(b"\x17\xfe\xfd" + bytes(10))
    assert records.pack(hello + hello, 1280) == [hello + hello]
    assert records.pack(hello + hello, len(hello)) == [hello, hello]
    assert records.psk_identity(hello) is None


def test_virtual_peers() -> None:
    peer = virtual_peer("dev1")
    assert is_virtual(peer) and peer == virtual_peer("dev1") and peer != virtual_peer("dev2")
    assert not is_virtual(("::ffff:127.0.0.1", 5683, 0, 0)) and not is_virtual(("100:0:0:1::", 1))


def test_handshake_lookup_and_data() -> None:
    h = Harness()
    client = h.handshake("id1", ADDRESS)
    assert len(h.table) == 1 and h.table.counters["handshakes"] == 1
    client.write(b"coap")
    h.table.receive(client.outgoing(), ADDRESS)
    assert h.delivered == [(b"coap", virtual_peer("dev1"))]
    assert h.table.endpoint_of(virtual_peer("dev1")) == "dev1"
    assert h.table.send(b"answer", virtual_peer("dev1"))
    for data, _ in h.sent:
        client.feed(data)
    assert client.read() == [b"answer"]
    assert not h.table.send(b"nobody", virtual_peer("dev2"))


def test_unknown_identity_and_wrong_key_open_nothing() -> None:
    h = Harness()
    h.handshake("nobody", ADDRESS)
    assert "unknown psk identity" in h.client_error
    h.handshake("id2", ("::ffff:127.0.0.1", 40001, 0, 0), key=b"wrong-key-0123456789xx")
    assert len(h.table) == 0 and h.table.counters["handshakes"] == 0
    assert h.table.counters["handshake_failures"] >= 1  # the unknown identity got an alert


def test_spoofed_client_hello_flood_keeps_no_state() -> None:
    h = Harness()
    hello = client_hello()
    h.table.receive(hello, ("::ffff:10.0.0.1", 1, 0, 0))  # warm up the listener
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for port in range(10_000):
        h.table.receive(hello, ("::ffff:10.0.0.1", 1024 + port, 0, 0))
        if len(h.sent) > 100:
            h.sent.clear()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert h.table.handshaking == 0 and len(h.table) == 0
    assert h.table.counters["hello_verify"] == 10_001
    assert grown < 200_000, grown
    # No amplification: each HelloVerifyRequest is smaller than the ClientHello that asked for it.
    assert all(len(data) < len(hello) for data, _ in h.sent)


def test_new_client_hello_on_an_open_session_rfc6347_4_2_8() -> None:
    h = Harness()
    old = h.handshake("id1", ADDRESS)
    h.table.receive(client_hello(), ADDRESS)  # no cookie: answered, the open session stays
    assert len(h.table) == 1 and h.table.counters["renegotiated"] == 0
    h.sent.clear()
    new = h.handshake("id1", ADDRESS)  # the client restarted: cookie exchange done, the old one ends
    assert h.table.counters["renegotiated"] == 1 and len(h.table) == 1
    new.write(b"after")
    h.table.receive(new.outgoing(), ADDRESS)
    assert h.delivered[-1] == (b"after", virtual_peer("dev1"))
    old.write(b"stale")
    h.table.receive(old.outgoing(), ADDRESS)
    assert h.delivered[-1][0] == b"after"


def test_limits_timeouts_and_newest_session_per_identity() -> None:
    h = Harness(DtlsLimits(max_sessions=2, idle_timeout=60.0, handshake_timeout=5.0))
    h.handshake("id1", ("::ffff:127.0.0.1", 1, 0, 0))
    h.handshake("id1", ("::ffff:127.0.0.1", 2, 0, 0))  # same identity, new address: the old one is closed
    assert len(h.table) == 1
    h.handshake("id2", ("::ffff:127.0.0.1", 3, 0, 0))
    h.keys["id3"] = PskCredential("id3", KEY, "dev3")
    h.handshake("id3", ("::ffff:127.0.0.1", 4, 0, 0))  # over the cap: the least recently heard goes
    assert len(h.table) == 2 and h.table.counters["evicted"] == 1
    assert h.table.endpoint_of(virtual_peer("dev1")) is None
    # A handshake that stops half-way is dropped at its timeout.
    client = ClientContext(b"id2", KEY).connection()
    client.handshake()
    hello = client.outgoing()
    h.table.receive(hello, ("::ffff:127.0.0.1", 5, 0, 0))
    client.feed(h.sent[-1][0])
    client.handshake()
    h.table.receive(client.outgoing(), ("::ffff:127.0.0.1", 5, 0, 0))  # cookie ok: a handshake under way
    assert h.table.handshaking == 1
    h.clock.now += 6.0
    h.table.tick()
    assert h.table.handshaking == 0 and h.table.counters["handshake_timeouts"] == 1
    h.clock.now += 60.0
    h.table.tick()
    assert len(h.table) == 0 and h.table.counters["idle_closed"] == 2


def test_both_lwm2m_psk_suites() -> None:
    for suite in (b"PSK-AES128-CCM8", b"PSK-AES128-CBC-SHA256"):
        h = Harness()
        client = h.handshake("id1", ADDRESS, suite=suite)
        assert len(h.table) == 1 and client.cipher() == suite.decode()
        client.write(b"ping")
        h.table.receive(client.outgoing(), ADDRESS)
        assert h.delivered == [(b"ping", virtual_peer("dev1"))]
