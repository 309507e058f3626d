"""The one module that touches OpenSSL: DTLS 1.2 contexts and connections on memory BIOs.

pyOpenSSL gives DTLS, `DTLSv1_listen` cookies, the MTU and memory BIOs through its public API. It has no PSK
callbacks, so those are set through cryptography's binding (`Context._context` and `Binding().lib`, private
API): the versions are pinned in pyproject.toml and `tests/coap/test_dtls_pure.py` checks the symbols.

The LwM2M PSK suites (PSK-AES128-CCM8, PSK-AES128-CBC-SHA256) are below OpenSSL 3's default security level
(no forward secrecy, 64-bit tag): `@SECLEVEL=0` lets the cipher list name them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.bindings.openssl.binding import Binding
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

_binding = Binding()
_ffi: Any = _binding.ffi
_lib: Any = _binding.lib

PSK_CIPHERS = b"PSK-AES128-CCM8:PSK-AES128-CBC-SHA256:@SECLEVEL=0"
# With certificates as well: LwM2M's certificate suite (RFC 7251), ECDSA keys on P-256.
ALL_CIPHERS = b"PSK-AES128-CCM8:PSK-AES128-CBC-SHA256:ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0"
DTLS1_2_VERSION = 0xFEFD  # not exported by pyOpenSSL
MTU = 1280  # IPv6's minimum MTU: what a constrained network carries without fragmentation
MAX_PSK = 64  # bytes (RFC 4279 §5.3 asks for at least 64)
MAX_IDENTITY = 128  # bytes (RFC 4279 §5.3)

PskServerLookup = Callable[[bytes], bytes | None]
"""identity → key, synchronous: it reads what the session table looked up before the handshake reached it."""

WantRead = SSL.WantReadError
Closed = SSL.ZeroReturnError
Failure = SSL.Error


class ServerContext:
    """An SSL_CTX for the server side, with PSK and cookie callbacks kept alive as long as it lives."""

    def __init__(
        self,
        *,
        psk: PskServerLookup,
        cookie: Callable[[], bytes],
        cookie_ok: Callable[[bytes], bool],
        identity_hint: bytes = b"",
        certificate: Path | None = None,
        private_key: Path | None = None,
        client_ca: Path | None = None,
    ) -> None:
        ctx = SSL.Context(SSL.DTLS_SERVER_METHOD)
        ctx.set_min_proto_version(DTLS1_2_VERSION)
        ctx.set_cipher_list(PSK_CIPHERS if certificate is None else ALL_CIPHERS)
        if certificate is not None:
            if private_key is None or client_ca is None:
                raise ValueError(
                    "a DTLS server certificate needs its private key and a CA for device certificates"
                )
            ctx.use_certificate_chain_file(str(certificate))
            ctx.use_privatekey_file(str(private_key))
            ctx.check_privatekey()
            ctx.load_verify_locations(str(client_ca))
            # Asked only in certificate suites (a PSK handshake has no CertificateRequest): there, a device
            # without a certificate chaining to `client_ca` fails the handshake.
            ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verified)
        # The application owns the MTU (memory BIOs cannot query it); buffers are released between records.
        ctx.set_options(SSL.OP_NO_QUERY_MTU | _lib.SSL_OP_COOKIE_EXCHANGE | SSL.OP_NO_TICKET)
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        ctx.set_cookie_generate_callback(lambda _conn: cookie())
        ctx.set_cookie_verify_callback(lambda _conn, value: cookie_ok(value))

        def _psk(_ssl: Any, identity: Any, out: Any, max_len: int) -> int:
            try:
                if identity == _ffi.NULL:
                    return 0
                key = psk(_ffi.string(identity))
                if not key or len(key) > max_len:
                    return 0
                _ffi.memmove(out, key, len(key))
                return len(key)
            except Exception:  # an exception cannot cross OpenSSL: fail this handshake
                return 0

        self._psk_callback = _ffi.callback(
            "unsigned int (*)(SSL *, const char *, unsigned char *, unsigned int)", _psk
        )
        raw = ctx._context
        _lib.SSL_CTX_set_psk_server_callback(raw, self._psk_callback)
        if identity_hint:
            _lib.SSL_CTX_use_psk_identity_hint(raw, identity_hint)
        self.ctx = ctx

    def connection(self) -> Connection:
        conn = SSL.Connection(self.ctx, None)
        conn.set_accept_state()
        conn.set_ciphertext_mtu(MTU)
        return Connection(conn, self)


def _verified(_conn: SSL.Connection, _cert: Any, _errno: int, _depth: int, ok: int) -> bool:
    return bool(ok)


class ClientContext:
    """An SSL_CTX for a client (the simulator, tests, the benchmark): a PSK, or a certificate and its key
    (then the server's certificate is checked against `ca`)."""

    def __init__(
        self,
        identity: bytes = b"",
        key: bytes = b"",
        *,
        certificate: Path | None = None,
        private_key: Path | None = None,
        ca: Path | None = None,
    ) -> None:
        if len(identity) >= MAX_IDENTITY or len(key) > MAX_PSK:
            raise ValueError("PSK identity or key too long")
        ctx = SSL.Context(SSL.DTLS_CLIENT_METHOD)
        ctx.set_min_proto_version(DTLS1_2_VERSION)
        ctx.set_max_proto_version(DTLS1_2_VERSION)
        ctx.set_options(SSL.OP_NO_QUERY_MTU | SSL.OP_NO_TICKET)
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        self.ctx = ctx
        if certificate is not None:
            ctx.set_cipher_list(b"ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0")
            ctx.use_certificate_chain_file(str(certificate))
            ctx.use_privatekey_file(str(private_key or certificate))
            if ca is not None:
                ctx.load_verify_locations(str(ca))
                ctx.set_verify(SSL.VERIFY_PEER, _verified)
            return
        ctx.set_cipher_list(PSK_CIPHERS)

        def _psk(
            _ssl: Any, _hint: Any, out_identity: Any, max_identity: int, out_key: Any, max_key: int
        ) -> int:
            if len(identity) + 1 > max_identity or len(key) > max_key:
                return 0
            _ffi.memmove(out_identity, identity + b"\0", len(identity) + 1)
            _ffi.memmove(out_key, key, len(key))
            return len(key)

        self._psk_callback = _ffi.callback(
            "unsigned int (*)(SSL *, const char *, char *, unsigned int, unsigned char *, unsigned int)", _psk
        )
        _lib.SSL_CTX_set_psk_client_callback(ctx._context, self._psk_callback)

    def connection(self) -> Connection:
        conn = SSL.Connection(self.ctx, None)
        conn.set_connect_state()
        conn.set_ciphertext_mtu(MTU)
        return Connection(conn, self)


class Connection:
    """One DTLS association on memory BIOs: bytes in from the network, bytes out to it, plaintext between."""

    __slots__ = ("_conn", "_owner")

    def __init__(self, conn: SSL.Connection, owner: object) -> None:
        self._conn = conn
        self._owner = owner  # keeps the context's cffi callbacks alive as long as a connection uses them

    def feed(self, data: bytes) -> None:
        self._conn.bio_write(data)

    def _buffered(self, bio: Any) -> int:
        # pyOpenSSL reports an empty memory BIO by raising (several µs per message); asking its length first
        # costs one call. `_from_ssl` / `_into_ssl` are pyOpenSSL's memory BIOs (private, see above).
        return int(_lib.BIO_get_mem_data(bio, _ffi.NULL))

    def outgoing(self) -> bytes:
        size = self._buffered(self._conn._from_ssl)
        return self._conn.bio_read(size) if size > 0 else b""

    def listen(self) -> bool:
        """Stateless cookie check of the ClientHello fed (RFC 6347 §4.2.1): True once its cookie is valid."""
        try:
            self._conn.DTLSv1_listen()
        except SSL.WantReadError:
            return False
        return True

    def handshake(self) -> bool:
        """Advance the handshake with what was fed: True when it is complete. Raises `Failure`."""
        try:
            self._conn.do_handshake()
        except SSL.WantReadError:
            return False
        return True

    def read(self) -> list[bytes]:
        """The application records fed, decrypted. Raises `Closed` on close_notify, `Failure` otherwise."""
        out: list[bytes] = []
        conn = self._conn
        while self._buffered(conn._into_ssl) > 0:  # one record per call; stop when all were read
            try:
                out.append(conn.recv(65536))
            except SSL.WantReadError:  # a record that is not application data (a retransmission...)
                break
        return out

    def write(self, data: bytes) -> None:
        self._conn.send(data)

    def timeout(self) -> float | None:
        return self._conn.DTLSv1_get_timeout()

    def handle_timeout(self) -> None:
        self._conn.DTLSv1_handle_timeout()

    def close(self) -> None:
        """Queue a close_notify alert (read it with `outgoing`)."""
        with contextlib.suppress(SSL.Error):
            self._conn.shutdown()

    def cipher(self) -> str | None:
        return self._conn.get_cipher_name()

    def peer_names(self) -> list[str]:
        """The verified peer certificate's subject CN, then its SAN DNS names and URIs; [] without one."""
        cert = self._conn.get_peer_certificate(as_cryptography=True)
        if cert is None:
            return []
        names = [str(attr.value) for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        with contextlib.suppress(x509.ExtensionNotFound):
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names += san.get_values_for_type(x509.DNSName)
            names += san.get_values_for_type(x509.UniformResourceIdentifier)
        return names
