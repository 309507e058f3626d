"""The registration interface as a pure state machine: parameters, registrations and their store.

No sockets and no clock: callers pass `now` (monotonic seconds) and the peer address. The asyncio shell
(`registration_face.py`) turns CoAP requests into calls here and the results into answers and listener events.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from translator.coap.errors import (
    BadRequest,
    UnknownRegistration,
    UnsupportedContentFormat,
    UnsupportedVersion,
)
from translator.coap.identity import DeviceIdentity
from translator.coap.lifetime import lifetime_problem
from translator.lwm2m import Lwm2mFormatError, RegisteredObjects, parse_registration

SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2")
DEFAULT_LIFETIME = 86400
UNBOUNDED_KEEP = 7 * 86400.0  # lifetime 0 ("infinite"): kept this long after the device was last heard
LINK_FORMAT = 40

# A peer's socket address exactly as the socket reports it: (host, port) or (host, port, flow, scope).
Peer = tuple[Any, ...]


def peer_host(peer: Peer) -> str:
    """The host of a socket address; an IPv4 one on the dual-stack socket without its `::ffff:` prefix."""
    host = str(peer[0])
    return host[7:] if host.startswith("::ffff:") else host


@dataclass(frozen=True, slots=True)
class RegisterParams:
    """The query of a Register (all fields) or an Update (None = unchanged)."""

    endpoint: str | None = None
    lifetime: int | None = None
    version: str | None = None
    binding: str | None = None
    queue_mode: bool | None = None
    sms: str | None = None


def _lifetime(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise BadRequest(f"invalid lifetime {text!r}")
    value = int(text)
    problem = lifetime_problem(value)
    if problem is not None:
        raise BadRequest(problem)
    return value


def parse_query(query: Sequence[str], *, update: bool = False) -> RegisterParams:
    """Parse `ep=..&lt=..&lwm2m=..&b=..&sms=..&Q`; unknown parameters are ignored."""
    values: dict[str, str] = {}
    bare_q = False
    for item in query:
        name, sep, value = item.partition("=")
        if not sep:
            if name == "Q":
                bare_q = True
            continue
        if name in values:
            raise BadRequest(f"repeated query parameter {name!r}")
        values[name] = value
    endpoint = None if update else values.get("ep")  # an Update's ep/lwm2m, if any, are ignored
    if endpoint is not None and not endpoint:
        raise BadRequest("empty endpoint name")
    version = values.get("lwm2m")
    if update:
        version = None
    else:
        version = version or "1.0"  # 1.0 clients were not required to send it in early drafts
        if version not in SUPPORTED_VERSIONS:
            raise UnsupportedVersion(f"LwM2M version {version!r} is not supported")
    binding = values.get("b")
    queue: bool | None = None
    if binding is not None:
        if not binding or any(c not in "UQSNT" for c in binding):
            raise BadRequest(f"invalid binding {binding!r}")
        if "U" not in binding:
            raise BadRequest(f"binding {binding!r} has no UDP: only U is served")
        queue = "Q" in binding
    if bare_q:
        queue = True
    elif queue is None and not update:
        queue = False
    lifetime = _lifetime(values["lt"]) if "lt" in values else (None if update else DEFAULT_LIFETIME)
    return RegisterParams(
        endpoint=endpoint,
        lifetime=lifetime,
        version=version,
        binding=binding or (None if update else "U"),
        queue_mode=queue,
        sms=values.get("sms"),
    )


def parse_objects(content_format: int | None, payload: bytes) -> RegisteredObjects | None:
    """The object list of a Register/Update payload; None when the payload is empty."""
    if not payload:
        return None
    if content_format not in (None, LINK_FORMAT):
        raise UnsupportedContentFormat(f"registration payload must be link format, not {content_format}")
    try:
        return parse_registration(payload)
    except Lwm2mFormatError as exc:
        raise BadRequest(exc.reason) from None


NO_OBJECTS = RegisteredObjects(objects={}, instances=(), content_formats=(), root="/", links=())


@dataclass(frozen=True, slots=True)
class Registration:
    """One registered client. Immutable: an Update produces a new one with the same `reg_id`."""

    reg_id: str
    identity: DeviceIdentity
    peer: Peer
    lifetime: int
    version: str
    binding: str
    queue_mode: bool
    objects: RegisteredObjects
    registered_at: float
    updated_at: float
    sms: str | None = None

    @property
    def endpoint(self) -> str:
        return self.identity.endpoint

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    @property
    def location(self) -> tuple[str, str]:
        return ("rd", self.reg_id)

    def expires_at(self, grace: float, unbounded: float = UNBOUNDED_KEEP) -> float:
        """When the registration ends; lifetime 0 ("infinite") ends `unbounded` seconds after the update."""
        return self.updated_at + (self.lifetime or unbounded) + grace

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, _, minor = self.version.partition(".")
        return int(major), int(minor or 0)


@dataclass(frozen=True, slots=True)
class RegisterOutcome:
    registration: Registration
    replaced: Registration | None


def _default_ids() -> Callable[[], str]:
    prefix = secrets.token_hex(2)
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):x}"


@dataclass
class RegistrationStore:
    """Registrations by id, by endpoint and by peer address. Keyed on the endpoint name."""

    grace: float = 30.0
    new_id: Callable[[], str] = field(default_factory=_default_ids)
    # Lifetime 0: how long a registration is kept past the last time the device was heard (`last_heard`,
    # monotonic, None when not known: then past its last Register/Update).
    unbounded: float = UNBOUNDED_KEEP
    last_heard: Callable[[Registration], float | None] | None = None
    _by_id: dict[str, Registration] = field(default_factory=dict)
    _by_endpoint: dict[str, str] = field(default_factory=dict)
    _by_peer: dict[Peer, str] = field(default_factory=dict)
    _expiries: list[tuple[float, str]] = field(default_factory=list)  # heap of (expiry time, reg_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Registration]:
        return iter(list(self._by_id.values()))

    def get(self, reg_id: str) -> Registration | None:
        return self._by_id.get(reg_id)

    def by_endpoint(self, endpoint: str) -> Registration | None:
        reg_id = self._by_endpoint.get(endpoint)
        return None if reg_id is None else self._by_id[reg_id]

    def by_peer(self, peer: Peer) -> Registration | None:
        reg_id = self._by_peer.get(peer)
        return None if reg_id is None else self._by_id.get(reg_id)

    def _expiry(self, reg: Registration) -> float:
        return reg.expires_at(self.grace, self.unbounded)

    def _heard_lately(self, reg: Registration, now: float) -> bool:
        """A lifetime-0 registration whose device was heard within `unbounded`: its expiry moves on."""
        if reg.lifetime or self.last_heard is None:
            return False
        heard = self.last_heard(reg)
        if heard is None or heard + self.unbounded + self.grace <= now:
            return False
        heapq.heappush(self._expiries, (heard + self.unbounded + self.grace, reg.reg_id))
        return True

    def set_lifetime(self, reg_id: str, lifetime: int) -> Registration | None:
        """The server wrote a new lifetime to the device (/1/x/1): it counts from the last update on."""
        reg = self._by_id.get(reg_id)
        if reg is None or reg.lifetime == lifetime:
            return reg
        new = replace(reg, lifetime=lifetime)
        self._unindex(reg)
        self._index(new)
        return new

    def _index(self, reg: Registration) -> None:
        # Every (re)index schedules its expiry; `expire` skips entries that a later update made stale.
        heapq.heappush(self._expiries, (self._expiry(reg), reg.reg_id))
        self._by_id[reg.reg_id] = reg
        self._by_endpoint[reg.endpoint] = reg.reg_id
        self._by_peer[reg.peer] = reg.reg_id

    def _unindex(self, reg: Registration) -> None:
        self._by_id.pop(reg.reg_id, None)
        if self._by_endpoint.get(reg.endpoint) == reg.reg_id:
            del self._by_endpoint[reg.endpoint]
        if self._by_peer.get(reg.peer) == reg.reg_id:
            del self._by_peer[reg.peer]

    def register(
        self,
        identity: DeviceIdentity,
        params: RegisterParams,
        objects: RegisteredObjects | None,
        peer: Peer,
        now: float,
    ) -> RegisterOutcome:
        """A new registration; an existing one for the same endpoint is replaced (and returned)."""
        old = self.by_endpoint(identity.endpoint)
        if old is not None:
            self._unindex(old)
        displaced = self.by_peer(peer)  # another endpoint that used this address before: stale
        if displaced is not None and self._by_peer.get(peer) == displaced.reg_id:
            del self._by_peer[peer]
        reg_id = self.new_id()
        while reg_id in self._by_id:  # restored registrations carry ids of an earlier process
            reg_id = self.new_id()
        reg = Registration(
            reg_id=reg_id,
            identity=identity,
            peer=peer,
            lifetime=DEFAULT_LIFETIME if params.lifetime is None else params.lifetime,
            version=params.version or "1.0",
            binding=params.binding or "U",
            queue_mode=bool(params.queue_mode),
            objects=objects if objects is not None else NO_OBJECTS,
            registered_at=now,
            updated_at=now,
            sms=params.sms,
        )
        self._index(reg)
        return RegisterOutcome(reg, old)

    def update(
        self, reg_id: str, params: RegisterParams, objects: RegisteredObjects | None, peer: Peer, now: float
    ) -> Registration:
        old = self._by_id.get(reg_id)
        if old is None:
            raise UnknownRegistration(f"no registration rd/{reg_id}")
        binding = params.binding if params.binding is not None else old.binding
        queue = params.queue_mode
        if queue is None:
            queue = "Q" in params.binding if params.binding is not None else old.queue_mode
        new = replace(
            old,
            peer=peer,
            lifetime=params.lifetime if params.lifetime is not None else old.lifetime,
            binding=binding,
            queue_mode=queue,
            objects=objects if objects is not None else old.objects,
            updated_at=now,
            sms=params.sms if params.sms is not None else old.sms,
        )
        self._unindex(old)
        self._index(new)
        return new

    def restore(self, reg: Registration) -> Registration | None:
        """Take back a registration kept across a restart, unless its endpoint or id is taken by then (a
        device that registered again first wins). Returns it when it was taken. An address another
        registration holds stays with that one (two stored registrations on one address: one is stale)."""
        if reg.endpoint in self._by_endpoint or reg.reg_id in self._by_id:
            return None
        holder = self._by_peer.get(reg.peer)
        self._index(reg)
        if holder is not None:
            self._by_peer[reg.peer] = holder
        return reg

    def touch(self, reg_id: str, peer: Peer) -> Registration | None:
        """Follow a device's address when it sends from a new port (Send, notification)."""
        reg = self._by_id.get(reg_id)
        if reg is None or reg.peer == peer:
            return reg
        new = replace(reg, peer=peer)
        self._unindex(reg)
        self._index(new)
        return new

    def deregister(self, reg_id: str) -> Registration:
        reg = self._by_id.get(reg_id)
        if reg is None:
            raise UnknownRegistration(f"no registration rd/{reg_id}")
        self._unindex(reg)
        return reg

    def expire(self, now: float) -> list[Registration]:
        """Remove and return registrations whose lifetime plus grace has passed (a heap of expiry times,
        not a walk over every registration each tick)."""
        gone: list[Registration] = []
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            _, reg_id = heapq.heappop(expiries)
            reg = self._by_id.get(reg_id)
            if reg is not None and self._expiry(reg) <= now and not self._heard_lately(reg, now):
                self._unindex(reg)
                gone.append(reg)
        if len(expiries) > 4 * len(self._by_id) + 1024:  # many updates: drop the stale entries
            self._expiries = [(self._expiry(r), r.reg_id) for r in self._by_id.values()]
            heapq.heapify(self._expiries)
        return gone
