"""Who may register or send, and as whom: the checks a request passes before anything changes.

The security context of a peer (its DTLS identity, or none on the plain port), admission (auto-registration
or the allow-list), endpoints with credentials refused on the plain port, a registration touched only from
its own security context, payload size, room in the registration table, and objects the owner can serve.
Plain ingest has no registration: the identity a name resolved to is remembered for a while, so the hot
path can serve the name's next readings without asking the credentials store again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from translator.coap.dtls.peers import is_virtual
from translator.coap.errors import BackPressure, BadRequest, Forbidden, PayloadTooLarge
from translator.coap.hooks import ObjectsCheck
from translator.coap.identity import (
    Admission,
    ClaimedEndpointResolver,
    DeviceIdentity,
    IdentityResolver,
    SecurityContext,
)
from translator.coap.memo import BoundedMemo
from translator.coap.registration import (
    Peer,
    RegisterParams,
    Registration,
    RegistrationStore,
    parse_objects,
    parse_query,
)
from translator.coap.settings import CoapSettings
from translator.lwm2m import RegisteredObjects

if TYPE_CHECKING:
    from translator.coap.credentials import Credentials

MAX_INGEST_IDENTITIES = 10_000
INGEST_IDENTITY_LIFETIME = 600.0


class Sessions(Protocol):
    """The DTLS endpoint as the checks see it."""

    def endpoint_of(self, peer: Peer) -> str | None:
        """The endpoint bound to the session of a virtual address; None once the session ended."""
        ...


def claimed_endpoint(query: Sequence[str]) -> str | None:
    """The endpoint a request names in its `ep=` query option (the last one wins)."""
    claimed: str | None = None
    for item in query:
        if item.startswith("ep="):
            claimed = item[3:]
    return claimed


def check_owner(reg: Registration | None, peer: Peer) -> None:
    """A registration made over DTLS is touched only through its identity, and one made over plain UDP
    never through a DTLS identity (each must register as itself)."""
    if reg is not None and reg.peer != peer and (is_virtual(reg.peer) or is_virtual(peer)):
        raise Forbidden(f"rd/{reg.reg_id} belongs to another security context")


class Gatekeeper:
    def __init__(
        self,
        *,
        settings: CoapSettings,
        store: RegistrationStore,
        clock: Callable[[], float],
        resolver: IdentityResolver | None = None,
        credentials: Credentials | None = None,
        objects_check: ObjectsCheck | None = None,
    ) -> None:
        self._max_payload = settings.max_payload
        self._max_registrations = settings.max_registrations
        self._store = store
        self._clock = clock
        self._resolver: IdentityResolver = resolver or ClaimedEndpointResolver()
        self._admission = Admission(auto=settings.auto_register, allow=settings.allow)
        # With credentials the plain port refuses the endpoints they secure.
        self._credentials = credentials
        self._objects_check = objects_check
        self._ingest_ids = BoundedMemo[str, DeviceIdentity](
            max_entries=MAX_INGEST_IDENTITIES, lifetime=INGEST_IDENTITY_LIFETIME
        )
        self.sessions: Sessions | None = None  # the DTLS endpoint while it runs

    @property
    def has_credentials(self) -> bool:
        return self._credentials is not None

    @property
    def ingest_identities(self) -> int:
        return len(self._ingest_ids)

    def sweep(self, now: float) -> None:
        self._ingest_ids.sweep(now)

    def security_for(self, peer: Peer) -> SecurityContext | None:
        """The peer's security context: the endpoint bound to its DTLS identity; plain UDP has none."""
        if not is_virtual(peer):
            return None
        endpoint = self.sessions.endpoint_of(peer) if self.sessions is not None else None
        if endpoint is None:
            raise Forbidden("the DTLS session ended")
        return SecurityContext("dtls-psk", endpoint)

    async def refuse_secured(self, claimed: str | None) -> None:
        """An endpoint with credentials is only ever itself over its secured session: on the plain port it is
        refused 4.03: the LwM2M Transport spec (Registration Interface) lists 4.03 Forbidden for a Register
        the server does not allow, while RFC 7252's 4.01 asks the client to improve its authentication on
        the same request, which the plain port can never accept."""
        if claimed is not None and self._credentials is not None and await self._credentials.secured(claimed):
            raise Forbidden(f"endpoint {claimed!r} has credentials: register over DTLS")

    def check_size(self, payload: bytes) -> None:
        if len(payload) > self._max_payload:
            raise PayloadTooLarge(f"payload of {len(payload)} bytes exceeds {self._max_payload}")

    def admit_objects(self, endpoint: str, objects: RegisteredObjects | None) -> None:
        """Refuse now (4.00) objects the owner cannot serve, rather than answer every later Send 5.00."""
        if objects is None or self._objects_check is None:
            return
        reason = self._objects_check(objects)
        if reason is not None:
            raise BadRequest(f"endpoint {endpoint}: {reason}")

    def admit_register(
        self, query: Sequence[str], peer: Peer, content_format: int | None, payload: bytes
    ) -> tuple[DeviceIdentity, RegisterParams, RegisteredObjects | None]:
        """A Register's identity, parameters and objects, once every check of the request passed."""
        params = parse_query(query)
        identity = self._resolver.resolve(params.endpoint, self.security_for(peer))
        self._admission.check(identity)
        self.check_size(payload)
        self._check_room(identity)
        objects = parse_objects(content_format, payload)
        self.admit_objects(identity.endpoint, objects)
        return identity, params, objects

    def _check_room(self, identity: DeviceIdentity) -> None:
        # A bound on what a flood of new endpoint names can hold (~3 KB each on this side); devices
        # already registered re-register as before.
        if len(self._store) >= self._max_registrations and self._store.by_endpoint(identity.endpoint) is None:
            raise BackPressure("registration table full", retry_after=60)

    def knows_ingest(self, claimed: str | None) -> bool:
        """Whether the name was resolved lately (the hot path serves it without asking the credentials)."""
        return claimed is not None and self._ingest_ids.get(claimed, self._clock()) is not None

    def ingest_identity(self, query: Sequence[str], peer: Peer) -> DeviceIdentity:
        claimed = claimed_endpoint(query)
        if is_virtual(peer):
            identity = self._resolver.resolve(claimed, self.security_for(peer))
            self._admission.check(identity)
            return identity
        now = self._clock()
        if claimed is not None:
            known = self._ingest_ids.get(claimed, now)
            if known is not None:
                return known
        identity = self._resolver.resolve(claimed, None)
        self._admission.check(identity)
        self._ingest_ids.put(identity.endpoint, identity, now)
        return identity
