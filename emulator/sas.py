"""SAS token checks as IoT Hub and DPS perform them.

Written independently of `translator.iotc.protocol.sas` on purpose: a bug shared by both sides would pass
unseen.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

SAS_PREFIX = "SharedAccessSignature "


class SasError(ValueError):
    """The token is malformed, expired, for another resource, or signed with another key."""


@dataclass(frozen=True, slots=True)
class SasToken:
    resource_uri: str  # decoded `sr`
    signature: str  # decoded `sig` (base64 text)
    expiry: int  # `se`, epoch seconds
    key_name: str | None  # `skn`
    raw: str


def derive_device_key(group_key_b64: str, registration_id: str) -> str:
    """The per-device key of a DPS symmetric-key group enrollment."""
    digest = hmac.new(base64.b64decode(group_key_b64), registration_id.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def parse_sas(token: str) -> SasToken:
    if not token.startswith(SAS_PREFIX):
        raise SasError("token does not start with 'SharedAccessSignature '")
    fields: dict[str, str] = {}
    for name, value in parse_qsl(token[len(SAS_PREFIX) :], keep_blank_values=True, strict_parsing=False):
        if name in fields:
            raise SasError(f"field {name!r} appears twice")
        fields[name] = value
    missing = [name for name in ("sr", "sig", "se") if name not in fields]
    if missing:
        raise SasError(f"token lacks {', '.join(missing)}")
    try:
        expiry = int(fields["se"])
    except ValueError:
        raise SasError("se is not an integer") from None
    return SasToken(fields["sr"], fields["sig"], expiry, fields.get("skn"), token)


def _signature(key_b64: str, resource_uri: str, expiry: int) -> bytes:
    # The signed string uses the URL-encoded resource URI, exactly as it appears in `sr` on the wire.
    to_sign = f"{quote(resource_uri, safe='')}\n{expiry}".encode()
    return hmac.new(base64.b64decode(key_b64), to_sign, hashlib.sha256).digest()


def verify_sas(
    token: SasToken,
    *,
    expected_resource: str,
    keys: list[str],
    now: float,
    expected_key_name: str | None = None,
) -> None:
    """Raise `SasError` unless the token is for `expected_resource`, unexpired, and signed by a key."""
    if token.resource_uri.rstrip("/").lower() != expected_resource.lower():
        raise SasError(f"token resource {token.resource_uri!r} is not {expected_resource!r}")
    if expected_key_name is not None and token.key_name not in (None, expected_key_name):
        raise SasError(f"token key name {token.key_name!r} is not {expected_key_name!r}")
    if token.expiry <= now:
        raise SasError(f"token expired at {token.expiry}")
    try:
        presented = base64.b64decode(token.signature, validate=True)
    except ValueError:
        raise SasError("signature is not base64") from None
    for key in keys:
        if hmac.compare_digest(presented, _signature(key, token.resource_uri, token.expiry)):
            return
    raise SasError("signature does not match the device key")
