"""The DTLS session table: sans-I/O (bytes in, bytes out through callbacks, time passed in).

* Sessions are keyed by the peer's socket address. A ClientHello from an address without a session goes
  through one shared, stateless listener (`DTLSv1_listen`, RFC 6347 §4.2.1): without a valid cookie it is
  answered with a HelloVerifyRequest and forgotten, so spoofed ClientHellos cost no memory and get an
  answer smaller than themselves. The cookie is an HMAC of the address under a secret that rotates.
* A ClientHello with a valid cookie from an address that has an open session starts a new handshake and
  ends the old association (RFC 6347 §4.2.8: the client proved reachability by the cookie exchange).
* The PSK is looked up asynchronously: the ClientKeyExchange (its identity is in the clear) is held while
  the shell awaits the credential store, then fed to OpenSSL, whose synchronous PSK callback finds the key
  on the session. An unknown identity or a wrong key fails the handshake with an alert; nothing else.
* Handshakes are bounded in number (the oldest is dropped) and in time; open sessions in number (the
  least recently heard is closed with close_notify) and idle time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from translator.coap.credentials import PskCredential
from translator.coap.dtls import records
from translator.coap.dtls.openssl import Closed, Connection, Failure, ServerContext
from translator.coap.dtls.peers import virtual_peer

log = logging.getLogger(__name__)

Address = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ServerCertificates:
    """The server's certificate chain and key, and the CA device certificates must chain to."""

    certificate: Path
    private_key: Path
    client_ca: Path


@dataclass(frozen=True, slots=True)
class DtlsLimits:
    max_sessions: int = 10_000
    max_handshakes: int = 1_000
    handshake_timeout: float = 30.0
    idle_timeout: float = 1800.0
    cookie_lifetime: float = 60.0  # a cookie stays valid between one and two of these


HANDSHAKE = 0
LOOKUP = 1
OPEN = 2
ENDED = 3


class Session:
    __slots__ = (
        "address",
        "conn",
        "created",
        "credential",
        "endpoint",
        "held",
        "last",
        "looked_up",
        "state",
        "suite",
        "virtual",
    )

    def __init__(self, address: Address, conn: Connection, now: float) -> None:
        self.address = address
        self.conn = conn
        self.created = now
        self.last = now
        self.state = HANDSHAKE
        self.suite: int | None = None
        self.credential: PskCredential | None = None
        self.looked_up = False
        self.held: bytes | None = None
        self.endpoint: str | None = None
        self.virtual: tuple[str, int, int, int] | None = None


Transmit = Callable[[bytes, Address], None]
Deliver = Callable[[bytes, tuple[str, int, int, int]], None]
Lookup = Callable[[Session, str], None]


class SessionTable:
    def __init__(
        self,
        *,
        transmit: Transmit,
        deliver: Deliver,
        lookup: Lookup,
        limits: DtlsLimits | None = None,
        clock: Callable[[], float],
        secret: Callable[[int], bytes] = os.urandom,
        certificates: ServerCertificates | None = None,
    ) -> None:
        self._transmit = transmit
        self._deliver = deliver
        self._lookup = lookup
        self.limits = limits or DtlsLimits()
        self._clock = clock
        self._secret_source = secret
        self._secrets = (secret(32), secret(32))
        self._secret_at = clock()
        self._context = ServerContext(
            psk=self._psk,
            cookie=self._cookie,
            cookie_ok=self._cookie_ok,
            certificate=certificates.certificate if certificates else None,
            private_key=certificates.private_key if certificates else None,
            client_ca=certificates.client_ca if certificates else None,
        )
        self._listener = self._context.connection()
        self._cookie_peer: Address = ()
        self._current: Session | None = None
        self._by_address: dict[Address, Session] = {}
        self._handshakes: OrderedDict[Address, Session] = OrderedDict()  # oldest first
        self._open: OrderedDict[Address, Session] = OrderedDict()  # least recently heard first
        self._by_virtual: dict[tuple[str, int, int, int], Session] = {}
        self.counters: dict[str, int] = {
            "hello_verify": 0,
            "handshakes": 0,
            "handshake_failures": 0,
            "handshake_timeouts": 0,
            "evicted": 0,
            "idle_closed": 0,
            "unknown_peer": 0,
            "renegotiated": 0,
        }

    def __len__(self) -> int:
        return len(self._open)

    @property
    def handshaking(self) -> int:
        return len(self._handshakes)

    # --- cookies (RFC 6347 §4.2.1) ----------------------------------------------------------------

    def _rotate(self, now: float) -> None:
        if now - self._secret_at >= self.limits.cookie_lifetime:
            self._secrets = (self._secret_source(32), self._secrets[0])
            self._secret_at = now

    def _mac(self, secret: bytes) -> bytes:
        # OpenSSL checks the cookie again when the handshake proper starts: then the session is current.
        current = self._current
        peer = current.address if current is not None else self._cookie_peer
        return hmac.new(secret, repr(peer[:2]).encode(), hashlib.sha256).digest()[:16]

    def _cookie(self) -> bytes:
        return self._mac(self._secrets[0])

    def _cookie_ok(self, cookie: bytes) -> bool:
        return any(hmac.compare_digest(cookie, self._mac(secret)) for secret in self._secrets)

    # --- PSK (called by OpenSSL inside `_step`) ----------------------------------------------------

    def _psk(self, identity: bytes) -> bytes | None:
        session = self._current
        if session is None or session.credential is None:
            return None
        credential = session.credential
        if credential.identity.encode("utf-8") != identity:
            return None
        return credential.key

    # --- datagrams in ------------------------------------------------------------------------------

    def receive(self, data: bytes, address: Address) -> None:
        session = self._by_address.get(address)
        if records.is_client_hello(data) and (session is None or session.state == OPEN):
            self._hello(data, address, session)
            return
        if session is None:
            self.counters["unknown_peer"] += 1  # records of a session we do not hold: ignored
            return
        if session.state == OPEN:
            session.last = self._clock()
            self._open.move_to_end(address)
        self._step(session, data)

    def _hello(self, data: bytes, address: Address, previous: Session | None) -> None:
        now = self._clock()
        self._rotate(now)
        listener = self._listener
        self._cookie_peer = address
        try:
            listener.feed(data)
            verified = listener.listen()
        except Failure:
            self._listener = self._context.connection()  # a malformed hello may leave it half-read
            return
        finally:
            self._cookie_peer = ()
        answer = listener.outgoing()
        if not verified:
            if answer:
                self.counters["hello_verify"] += 1
                self._transmit(answer, address)
            return
        self._listener = self._context.connection()
        if previous is not None:
            self.counters["renegotiated"] += 1
            self._end(previous)
        while len(self._handshakes) >= self.limits.max_handshakes:
            _, oldest = self._handshakes.popitem(last=False)
            self.counters["evicted"] += 1
            self._end(oldest)
        session = Session(address, listener, now)
        self._by_address[address] = session
        self._handshakes[address] = session
        self._step(session, None, answer)

    def _step(self, session: Session, data: bytes | None, pending: bytes = b"") -> None:
        if session.state == LOOKUP:
            return  # a retransmission while the key is looked up: the held flight answers it
        if (
            session.state == HANDSHAKE
            and data is not None
            and not session.looked_up
            and session.suite in records.PSK_SUITES
        ):
            identity = records.psk_identity(data)
            if identity is not None:
                try:
                    name = identity.decode("utf-8")
                except UnicodeDecodeError:
                    name = None
                session.looked_up = True
                if name is not None:
                    session.state = LOOKUP
                    session.held = data
                    self._lookup(session, name)
                    return
        conn = session.conn
        self._current = session
        try:
            if data is not None:
                conn.feed(data)
            plaintexts: list[bytes] = []
            if session.state == HANDSHAKE:
                done = conn.handshake()
                out = pending + conn.outgoing()
                if session.suite is None:
                    session.suite = records.server_suite(out)
                self._send(out, session.address)
                if done:
                    self._opened(session)
                    plaintexts = conn.read()
            else:
                plaintexts = conn.read()
                self._send(conn.outgoing(), session.address)
        except Closed:
            self._send(conn.outgoing(), session.address)
            self._end(session)
            return
        except Failure as error:
            self._send(conn.outgoing(), session.address)  # the alert
            if session.state != OPEN:
                self.counters["handshake_failures"] += 1
                log.info("DTLS handshake from %s failed: %s", _host(session.address), _reason(error))
            self._end(session)
            return
        finally:
            self._current = None
        virtual = session.virtual
        if virtual is not None:
            for plaintext in plaintexts:
                self._deliver(plaintext, virtual)

    def resolved(self, session: Session, credential: PskCredential | None) -> None:
        """The shell's answer to `lookup`: the credential of the identity, or None (the handshake fails)."""
        if session.state != LOOKUP:
            return  # ended meanwhile
        session.state = HANDSHAKE
        session.credential = credential
        held, session.held = session.held, None
        self._step(session, held)

    def _opened(self, session: Session) -> None:
        credential = session.credential
        if credential is None:
            # A certificate suite: OpenSSL verified the chain to the devices' CA; the certificate names the
            # one endpoint it may act as (its CN, else its first SAN).
            names = session.conn.peer_names()
            if not names:
                self._end(session)
                return
            credential = PskCredential(f"x509:{names[0]}", b"", names[0])
        self._handshakes.pop(session.address, None)
        session.state = OPEN
        session.endpoint = credential.endpoint
        session.credential = PskCredential(credential.identity, b"", credential.endpoint)  # drop the key
        session.virtual = virtual_peer(credential.endpoint)
        session.last = self._clock()
        previous = self._by_virtual.get(session.virtual)
        if previous is not None and previous is not session:
            self._close(previous)  # the identity's newer session wins (a NAT rebinding, a restarted client)
        self._by_virtual[session.virtual] = session
        while len(self._open) >= self.limits.max_sessions:
            _, oldest = self._open.popitem(last=False)
            self.counters["evicted"] += 1
            self._close(oldest)
        self._open[session.address] = session
        self.counters["handshakes"] += 1
        log.info(
            "endpoint=%s: DTLS session from %s (%s)",
            session.endpoint,
            _host(session.address),
            session.conn.cipher(),
        )

    # --- datagrams out -----------------------------------------------------------------------------

    def _send(self, data: bytes, address: Address) -> None:
        if not data:
            return
        for datagram in records.pack(data, 1280):
            self._transmit(datagram, address)

    def send(self, plaintext: bytes, virtual: Any) -> bool:
        """Encrypt a CoAP message for the identity's newest session; False when it has none (dropped)."""
        session = self._by_virtual.get(tuple(virtual))
        if session is None or session.state != OPEN:
            return False
        try:
            session.conn.write(plaintext)
        except Failure:
            self._end(session)
            return False
        self._send(session.conn.outgoing(), session.address)
        return True

    def endpoint_of(self, virtual: Any) -> str | None:
        session = self._by_virtual.get(tuple(virtual[:4]))
        return session.endpoint if session is not None else None

    # --- time --------------------------------------------------------------------------------------

    def tick(self) -> None:
        now = self._clock()
        self._rotate(now)
        limits = self.limits
        for session in list(self._handshakes.values()):
            if now - session.created > limits.handshake_timeout:
                self.counters["handshake_timeouts"] += 1
                self._end(session)
                continue
            if session.state != HANDSHAKE:
                continue
            left = session.conn.timeout()
            if left is not None and left <= 0:
                try:
                    session.conn.handle_timeout()  # retransmits our last flight
                except Failure:
                    self._end(session)
                    continue
                self._send(session.conn.outgoing(), session.address)
        while self._open:
            session = next(iter(self._open.values()))
            if now - session.last <= limits.idle_timeout:
                break
            self.counters["idle_closed"] += 1
            self._close(session)

    def close(self) -> None:
        """Tell every open session's peer (close_notify) and forget everything."""
        for session in list(self._open.values()):
            self._close(session)
        for session in list(self._handshakes.values()):
            self._end(session)

    # --- ending ------------------------------------------------------------------------------------

    def _close(self, session: Session) -> None:
        if session.state == OPEN:
            session.conn.close()
            self._send(session.conn.outgoing(), session.address)
        self._end(session)

    def _end(self, session: Session) -> None:
        session.state = ENDED
        session.held = None
        session.credential = None
        address = session.address
        if self._by_address.get(address) is session:
            del self._by_address[address]
        if self._handshakes.get(address) is session:
            del self._handshakes[address]
        if self._open.get(address) is session:
            del self._open[address]
        if session.virtual is not None and self._by_virtual.get(session.virtual) is session:
            del self._by_virtual[session.virtual]


def _host(address: Address) -> str:
    try:
        host = str(address[0])
        return f"{host[7:] if host.startswith('::ffff:') else host} port {address[1]}"
    except (TypeError, IndexError):
        return repr(address)[:80]


def _reason(error: Exception) -> str:
    try:
        return "; ".join(str(item[2]) for item in error.args[0])[:200]
    except (TypeError, IndexError):
        return str(error)[:200]
