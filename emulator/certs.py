"""TLS material: the emulator's own CA and server certificate, and X.509 enrollment checks."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emulator.private_files import private_dir, write_private

log = logging.getLogger(__name__)

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"


@dataclass(frozen=True, slots=True)
class ServerTls:
    ca_path: Path
    cert_path: Path
    key_path: Path


def _write_private(path: Path, data: bytes) -> None:
    write_private(path, data)  # 0600 from creation, not chmod-ed after the key was on disk


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "iotc-translator emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(days=1), now + dt.timedelta(days=3650)


def _server_names(hub_names: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    names += [x509.DNSName(name) for name in hub_names]
    return names


def _cert_covers(cert: x509.Certificate, wanted: list[x509.GeneralName]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = set(san)
    expires = cert.not_valid_after_utc
    return all(name in present for name in wanted) and expires > dt.datetime.now(dt.UTC)


def ensure_server_tls(state_dir: Path, hub_names: list[str]) -> ServerTls:
    """Create (once) a CA and a server certificate valid for localhost, 127.0.0.1, ::1 and every hub name.

    The server certificate is re-issued from the same CA when the hub names change, so clients keep trusting
    the CA they were given.
    """
    private_dir(state_dir)
    ca_path, ca_key_path = state_dir / CA_CERT_FILE, state_dir / CA_KEY_FILE
    cert_path, key_path = state_dir / SERVER_CERT_FILE, state_dir / SERVER_KEY_FILE
    not_before, not_after = _validity()

    if ca_path.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{ca_key_path} is not an EC private key")
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("iotc-translator emulator CA"))
            .issuer_name(_name("iotc-translator emulator CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(ca_key_path, _key_pem(ca_key))
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert_path.unlink(missing_ok=True)
        log.info("generated emulator CA %s", ca_path)

    wanted = _server_names(hub_names)
    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _cert_covers(current, wanted):
            return ServerTls(ca_path, cert_path, key_path)

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(server_key))
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    log.info("issued emulator server certificate %s", cert_path)
    return ServerTls(ca_path, cert_path, key_path)


def server_ssl_context(tls: ServerTls, enrollment_ca: Path | None) -> ssl.SSLContext:
    """TLS 1.2+ server context; a client certificate is asked for, and checked, only for X.509 enrollment."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_path, tls.key_path)
    if enrollment_ca is not None:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=str(enrollment_ca))
    return context


def peer_common_name(peer_cert: dict[str, object] | None) -> str | None:
    """The subject CN of a client certificate the TLS layer has already verified against the enrollment CA."""
    if not peer_cert:
        return None
    subject = peer_cert.get("subject")
    if not isinstance(subject, tuple):
        return None
    for rdn in subject:
        for attribute in rdn:
            if attribute[0] == "commonName":
                return str(attribute[1])
    return None
