"""Who a device is: endpoint name → IoT Central device id, identity resolution and admission. Pure.

The endpoint name → device id rule is in `translator/coap/device_id.py`.

Identity: a device claims an endpoint name (`ep`); later a DTLS-PSK identity or an OSCORE context will
name it instead. `IdentityResolver.resolve(claimed, security)` is the one place this is decided, so the
registration path does not change when security arrives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from translator.coap.device_id import device_id_for, endpoint_for
from translator.coap.errors import BadRequest, Forbidden

__all__ = [
    "Admission",
    "ClaimedEndpointResolver",
    "DeviceIdentity",
    "IdentityResolver",
    "SecurityContext",
    "device_id_for",
    "endpoint_for",
]


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
        if self.auto or identity.authenticated:  # a secured identity was admitted by its credentials
            return
        if identity.endpoint in self._allowed or identity.device_id in self._allowed:
            return
        raise Forbidden(f"endpoint {identity.endpoint!r} is not on the allow-list")
