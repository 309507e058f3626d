"""Who a device is: endpoint name → IoT Central device id, identity resolution and admission. Pure.

Endpoint name → device id (deterministic, injective, always a valid IoT Central device id):

1. The name is taken as UTF-8. Bytes of lowercase ASCII letters, digits and `-` `.` `_` `:` are kept.
2. Every other byte (uppercase letters, `%`, spaces, other punctuation, non-ASCII) becomes `%` followed by
   two lowercase hex digits (`Dev 1` → `%44ev%201`, `urn:imei:35` → `urn:imei:35`).
   `%` is never kept, so every `%` starts an escape and the result decodes back to the name: no two
   names share an id.
3. If the result is longer than 128 characters it is replaced by its first 74 characters, `$`, and the
   first 52 base32 characters (lowercase, 260 bits) of the SHA-256 of the *name*: 127 characters. `$` never
   appears in a rule-2 id, so a long name cannot collide with a short one, and two long names collide only
   if SHA-256 does.
4. An empty name is refused (4.00).

Identity: a device claims an endpoint name (`ep`); later a DTLS-PSK identity or an OSCORE context will
name it instead. `IdentityResolver.resolve(claimed, security)` is the one place this is decided, so the
registration path does not change when security arrives.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from translator.coap.errors import BadRequest, Forbidden

MAX_DEVICE_ID = 128
MAX_ENDPOINT_BYTES = 1024
_KEEP = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-._:")
_ESCAPE = tuple(f"%{b:02x}" for b in range(256))
_LONG_PREFIX = 74


def device_id_for(endpoint: str) -> str:
    """The IoT Central device id of an LwM2M endpoint name (see the module docstring for the rule)."""
    if not endpoint:
        raise BadRequest("empty endpoint name")
    raw = endpoint.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_ENDPOINT_BYTES:
        raise BadRequest(f"endpoint name longer than {MAX_ENDPOINT_BYTES} bytes")
    encoded = "".join(chr(b) if b in _KEEP else _ESCAPE[b] for b in raw)
    if len(encoded) <= MAX_DEVICE_ID:
        return encoded
    digest = base64.b32encode(hashlib.sha256(raw).digest()).decode("ascii").lower()[:52]
    return f"{encoded[:_LONG_PREFIX]}${digest}"


def endpoint_for(device_id: str) -> str | None:
    """The endpoint name behind a rule-2 device id (None for hashed long ids, which are one-way)."""
    if "$" in device_id:
        return None
    out = bytearray()
    i = 0
    while i < len(device_id):
        c = device_id[i]
        if c == "%":
            out.append(int(device_id[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(c))
            i += 1
    return out.decode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """A device as the rest of the translator knows it: its LwM2M endpoint and IoT Central device id.

    `authenticated` is True when the identity came from a security context rather than a claim.
    """

    endpoint: str
    device_id: str
    authenticated: bool = False

    @classmethod
    def of(cls, endpoint: str, *, authenticated: bool = False) -> DeviceIdentity:
        return cls(endpoint, device_id_for(endpoint), authenticated)


@dataclass(frozen=True, slots=True)
class SecurityContext:
    """What a secured transport knows about its peer (DTLS-PSK identity, OSCORE recipient id...).

    Plain UDP has none; the field exists so the registration path already takes it.
    """

    kind: str
    identity: str


class IdentityResolver(Protocol):
    def resolve(self, claimed: str | None, security: SecurityContext | None) -> DeviceIdentity:
        """The device's identity, or raise `BadRequest` (no name) / `Forbidden` (mismatch)."""
        ...


class ClaimedEndpointResolver:
    """Plain UDP: trust the `ep` the device claims; with a security context, the context wins.

    A claimed name that disagrees with an authenticated one is refused (4.03): a device must not
    register under another's name.
    """

    def resolve(self, claimed: str | None, security: SecurityContext | None) -> DeviceIdentity:
        if security is not None:
            if claimed is not None and claimed != security.identity:
                raise Forbidden(f"endpoint {claimed!r} does not match the security identity")
            return DeviceIdentity.of(security.identity, authenticated=True)
        if claimed is None:
            raise BadRequest("missing endpoint name (ep)")
        return DeviceIdentity.of(claimed)


class Admission:
    """Which devices may connect: everyone (auto-registration) or an allow-list.

    The allow-list may name endpoints or device ids.
    """

    __slots__ = ("_allowed", "auto")

    def __init__(self, *, auto: bool = True, allow: Iterable[str] = ()) -> None:
        self.auto = auto
        self._allowed = frozenset(allow)

    def check(self, identity: DeviceIdentity) -> None:
        if self.auto:
            return
        if identity.endpoint in self._allowed or identity.device_id in self._allowed:
            return
        raise Forbidden(f"endpoint {identity.endpoint!r} is not on the allow-list")
