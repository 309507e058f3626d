"""Shared access signature (SAS) tokens for DPS and IoT Hub, and group-key derivation.

Token: `SharedAccessSignature sr={enc(uri)}&sig={enc(sig)}&se={se}[&skn={name}]` where
`sig = base64(HMAC-SHA256(base64decode(key), enc(uri) + "\\n" + se))`.

Encoding follows Microsoft's Python device SDK (azure-iot-device, `sastoken.py`): the resource URI
and the signature are percent-encoded with `quote(..., safe="")` (uppercase hex, `/` encoded, space
as `%20`, never `+`), and the string signed is the encoded URI exactly as it appears in `sr`. The
service recomputes the HMAC over the `sr` it receives, so what matters is that `sr` and the signed
string are the same bytes. Microsoft's token-structure tables say "lower case URL-encoding of the
lower case resource URI", but neither the Python nor the Node SDK lowercases, and device ids are
case-sensitive; we follow the SDKs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from dataclasses import dataclass
from urllib.parse import quote, unquote

from translator.iotc.protocol.errors import SasTokenError

_PREFIX = "SharedAccessSignature "
_REQUIRED = ("sr", "sig", "se")
_ALLOWED = frozenset((*_REQUIRED, "skn"))

DPS_KEY_NAME = "registration"
"""DPS symmetric-key attestation signs with `skn=registration`; the hub takes no `skn`."""


def _encode(text: str) -> str:
    return quote(text, safe="")


def _decode_key(key: str) -> bytes:
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SasTokenError("signing key is not valid base64") from exc
    if not raw:
        raise SasTokenError("signing key is empty")
    return raw


def sign(key: str, message: str) -> str:
    """base64(HMAC-SHA256(base64decode(key), utf8(message)))."""
    digest = hmac.new(_decode_key(key), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def derive_device_key(group_key: str, registration_id: str) -> str:
    """The device key for `registration_id` in a symmetric-key enrollment group (IoT Central SAS group)."""
    return sign(group_key, registration_id)


@dataclass(frozen=True, slots=True)
class SasToken:
    """A parsed or generated token.

    `sr` is kept exactly as it appears in the token (still percent-encoded), because that string
    is what was signed; `signature` is the base64 signature (percent-decoded).
    """

    sr: str
    signature: str
    expiry: int
    key_name: str | None = None

    @property
    def resource_uri(self) -> str:
        """The decoded resource URI, e.g. `myhub.azure-devices.net/devices/dev1`."""
        return unquote(self.sr)

    def __str__(self) -> str:
        token = f"{_PREFIX}sr={self.sr}&sig={_encode(self.signature)}&se={self.expiry}"
        if self.key_name is not None:
            token += f"&skn={_encode(self.key_name)}"
        return token

    def is_signed_by(self, key: str) -> bool:
        """Whether `key` produced this token's signature (constant-time compare)."""
        expected = sign(key, f"{self.sr}\n{self.expiry}")
        return hmac.compare_digest(expected.encode("ascii"), self.signature.encode("utf-8"))

    def expired(self, now: float) -> bool:
        return now >= self.expiry

    @classmethod
    def create(cls, resource_uri: str, key: str, expiry: int, key_name: str | None = None) -> SasToken:
        """Sign `resource_uri` (decoded form) until `expiry` (epoch seconds)."""
        if expiry < 0:
            raise SasTokenError("expiry must be epoch seconds")
        sr = _encode(resource_uri)
        return cls(sr=sr, signature=sign(key, f"{sr}\n{expiry}"), expiry=expiry, key_name=key_name)

    @classmethod
    def parse(cls, token: str) -> SasToken:
        """Parse `SharedAccessSignature sr=..&sig=..&se=..[&skn=..]` (fields in any order)."""
        if not token.startswith(_PREFIX):
            raise SasTokenError("not a SharedAccessSignature token")
        fields: dict[str, str] = {}
        for part in token[len(_PREFIX) :].split("&"):
            name, sep, value = part.partition("=")
            if not sep or not value:
                raise SasTokenError(f"malformed token field {part!r}")
            if name not in _ALLOWED:
                raise SasTokenError(f"unexpected token field {name!r}")
            if name in fields:
                raise SasTokenError(f"duplicate token field {name!r}")
            fields[name] = value
        missing = [name for name in _REQUIRED if name not in fields]
        if missing:
            raise SasTokenError(f"token lacks {', '.join(missing)}")
        if not fields["se"].isascii() or not fields["se"].isdigit():
            raise SasTokenError("token expiry is not epoch seconds")
        skn = fields.get("skn")
        return cls(
            sr=fields["sr"],
            signature=unquote(fields["sig"]),
            expiry=int(fields["se"]),
            key_name=None if skn is None else unquote(skn),
        )


def generate_sas_token(resource_uri: str, key: str, expiry: int, key_name: str | None = None) -> str:
    """The token string for `resource_uri` (decoded form), valid until `expiry` (epoch seconds)."""
    return str(SasToken.create(resource_uri, key, expiry, key_name))


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """How long tokens live and how early they are renewed.

    The hub drops the connection when the token expires, so a session reconnects with a fresh
    token `renew_before` seconds ahead of expiry (1 h tokens renewed 2 min early by default).
    """

    ttl: int = 3600
    renew_before: int = 120

    def __post_init__(self) -> None:
        if self.ttl <= 0:
            raise ValueError("token ttl must be positive")
        if not 0 <= self.renew_before < self.ttl:
            raise ValueError("renew_before must be in [0, ttl)")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token plus when to replace it; times are wall-clock epoch seconds."""

    token: SasToken
    issued_at: float
    renew_at: float

    @property
    def expiry(self) -> int:
        return self.token.expiry

    def __str__(self) -> str:
        return str(self.token)

    def needs_renewal(self, now: float) -> bool:
        return now >= self.renew_at

    def seconds_until_renewal(self, now: float) -> float:
        return max(0.0, self.renew_at - now)

    def expired(self, now: float) -> bool:
        return self.token.expired(now)


@dataclass(frozen=True, slots=True)
class SasCredential:
    """What a device signs with: resource URI, key and optional policy name.

    `issue(now)` takes the time as an argument so that nothing here reads a clock.
    """

    resource_uri: str
    key: str
    key_name: str | None = None
    policy: TokenPolicy = TokenPolicy()

    def __post_init__(self) -> None:
        _decode_key(self.key)  # fail at construction, not at the first reconnect

    def issue(self, now: float) -> IssuedToken:
        if not math.isfinite(now) or now < 0:
            raise ValueError("now must be epoch seconds")
        # Whole seconds, rounded down like the SDKs: se is a decimal integer on the wire.
        expiry = int(now + self.policy.ttl)
        token = SasToken.create(self.resource_uri, self.key, expiry, self.key_name)
        return IssuedToken(token=token, issued_at=now, renew_at=float(expiry - self.policy.renew_before))

    def __repr__(self) -> str:
        # Keep the key out of logs and tracebacks.
        return (
            f"SasCredential(resource_uri={self.resource_uri!r}, key_name={self.key_name!r}, "
            f"policy={self.policy!r}, key=<redacted>)"
        )
