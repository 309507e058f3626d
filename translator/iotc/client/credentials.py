"""How a device proves who it is: a symmetric key (SAS tokens) or an X.509 certificate.

The translator can mint a device's leaf certificate (CN = device id) from an X.509 enrollment CA's key, the
way a manufacturer would at the factory, and use it for DPS and the hub.

DPS takes the certificate's subject CN as the registration id, and "the subject common name of an X.509
certificate is limited to 64 characters" (https://learn.microsoft.com/azure/iot-dps/iot-dps-https-x509-support).
No CN scheme gets around that (the CN *is* the registration id and the hub device id), so a device whose id is
longer than 64 characters cannot get a minted certificate: minting refuses it with `CommonNameTooLongError`
and the bridge refuses the device (4.03 with the reason, a log line, no session). Such a device connects with
a symmetric key (group key), or is imported (`devices import`) with a shorter id of its own.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from translator.iotc.protocol.ids import MAX_COMMON_NAME
from translator.iotc.protocol.sas import IssuedToken, SasCredential, TokenPolicy, derive_device_key
from translator.private_files import private_dir, write_private


class CommonNameTooLongError(ValueError):
    """The device id cannot be an X.509 subject CN (more than 64 characters)."""

    def __init__(self, device_id: str) -> None:
        super().__init__(
            f"device id {device_id!r} has {len(device_id)} characters; an X.509 certificate's CN (which DPS "
            f"takes as the registration id) holds at most {MAX_COMMON_NAME}: use a group key, or import the "
            "device with a shorter id"
        )


@dataclass(frozen=True, slots=True)
class SymmetricKey:
    """A device key; `from_group` derives it from a group enrollment key."""

    key: str

    @classmethod
    def from_group(cls, group_key: str, registration_id: str) -> SymmetricKey:
        return cls(derive_device_key(group_key, registration_id))

    def __repr__(self) -> str:
        return "SymmetricKey(<hidden>)"


@dataclass(frozen=True, slots=True)
class X509Identity:
    """PEM files of a device certificate (with its chain) and its private key."""

    cert_path: Path
    key_path: Path


Credential = SymmetricKey | X509Identity


@dataclass(frozen=True, slots=True)
class ConnectSecret:
    """What a CONNECT proves identity with: a SAS token as the password (and when to renew it), or a client
    certificate in TLS and no password."""

    password: str | None
    token: IssuedToken | None
    identity: X509Identity | None


def connect_secret(
    credential: Credential,
    resource_uri: str,
    now: float,
    *,
    policy: TokenPolicy | None = None,
    key_name: str | None = None,
) -> ConnectSecret:
    """The one credential → password path, for DPS and the hub alike. They differ only in the resource URI
    and the key name: for DPS "the policy name (skn) must be set to registration"
    (https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-dps); the hub's token carries none."""
    if isinstance(credential, X509Identity):
        return ConnectSecret(None, None, credential)
    sas = SasCredential(resource_uri, credential.key, key_name=key_name, policy=policy or TokenPolicy())
    token = sas.issue(now)
    return ConnectSecret(str(token), token, None)


def client_ssl_context(ca_file: Path | None, identity: X509Identity | None = None) -> ssl.SSLContext:
    """TLS 1.2+ client context trusting `ca_file` (or the system's CAs), presenting `identity` if given."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if identity is not None:
        context.load_cert_chain(identity.cert_path, identity.key_path)
    return context


class TlsContexts:
    """Client TLS contexts, built once and shared: a context holds its CA store, so one per connection
    would cost tens of kilobytes per session. Symmetric-key devices share one; each X.509 identity has its
    own."""

    def __init__(self, ca_file: Path | None) -> None:
        self._ca_file = ca_file
        self._contexts: dict[X509Identity | None, ssl.SSLContext] = {}

    def for_identity(self, identity: X509Identity | None) -> ssl.SSLContext:
        context = self._contexts.get(identity)
        if context is None:
            context = self._contexts[identity] = client_ssl_context(self._ca_file, identity)
        return context

    def forget(self, identity: X509Identity) -> None:
        self._contexts.pop(identity, None)


def mint_device_certificate(
    device_id: str,
    ca_cert_path: Path,
    ca_key_path: Path,
    out_dir: Path,
    *,
    valid_days: int = 365,
) -> X509Identity:
    """Issue a leaf certificate with CN = `device_id` from an enrollment CA; reuse it while it is valid."""
    if len(device_id) > MAX_COMMON_NAME:
        raise CommonNameTooLongError(device_id)
    private_dir(out_dir)
    cert_path, key_path = out_dir / f"{device_id}.pem", out_dir / f"{device_id}-key.pem"
    now = dt.datetime.now(dt.UTC)
    if cert_path.exists() and key_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if existing.not_valid_after_utc > now + dt.timedelta(days=1):
            return X509Identity(cert_path, key_path)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError(f"{ca_key_path}: the CA key must be an EC or RSA private key")
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # 0600 from creation: written then chmod-ed, the key was readable by others in between.
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    cert_path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    return X509Identity(cert_path, key_path)
