"""A registration as it survives a restart: what the CoAP face needs to take a device back without a word
from it. Pure: documents in, documents out; the caller gives the clocks.

A snapshot holds the registration (endpoint, location, address, binding, lifetime, object links, LwM2M
version, queue mode) and its observations (token, paths, content format). Its expiry is wall-clock time:
the monotonic clock of the process that wrote it means nothing to the next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from translator.coap.identity import DeviceIdentity
from translator.coap.registration import (
    NO_OBJECTS,
    UNBOUNDED_KEEP,
    Registration,
    parse_objects,
)
from translator.lwm2m import Lwm2mFormatError, Path, RegisteredObjects, format_links

FORMAT = 2  # documents written before restore existed (no "format") have no location: never restored


class SnapshotError(ValueError):
    """A stored document cannot be turned back into a registration (old format, damaged)."""


@dataclass(frozen=True, slots=True)
class ObservationSnapshot:
    token: bytes
    paths: tuple[Path, ...]
    content_format: int
    composite: bool


@dataclass(frozen=True, slots=True)
class RegistrationSnapshot:
    registration: Registration
    observations: tuple[ObservationSnapshot, ...]
    expires: float  # wall-clock seconds when lifetime (without grace) runs out
    settled: bool = False  # its set-up (reads, attributes, observations) completed

    def remaining(self, wall_now: float) -> float:
        return self.expires - wall_now


def expiry_wallclock(
    registration: Registration, *, now: float, wall_now: float, unbounded: float = UNBOUNDED_KEEP
) -> float:
    """When `registration` (on the monotonic clock `now`) runs out, on the wall clock; a lifetime of 0
    ("infinite") runs out `unbounded` seconds after its last update."""
    return wall_now + (registration.expires_at(0.0, unbounded) - now)


def to_document(snapshot: RegistrationSnapshot) -> dict[str, Any]:
    reg = snapshot.registration
    return {
        "format": FORMAT,
        "reg_id": reg.reg_id,
        "authenticated": reg.identity.authenticated,
        "peer": list(reg.peer),
        "lifetime": reg.lifetime,
        "version": reg.version,
        "binding": reg.binding,
        "queue_mode": reg.queue_mode,
        "sms": reg.sms,
        "links": format_links(reg.objects.links),
        # Kept for readers of the old document (and people reading the store by hand).
        "objects": {str(k): v for k, v in reg.objects.objects.items()},
        "expires": snapshot.expires,
        "settled": snapshot.settled,
        "observations": [
            {
                "token": obs.token.hex(),
                "paths": [str(p) for p in obs.paths],
                "content_format": obs.content_format,
                "composite": obs.composite,
            }
            for obs in snapshot.observations
        ],
    }


@dataclass(slots=True)
class _Parsed:
    """A fleet mostly shares its object lists and observed paths: each is parsed once per restore (the
    results are immutable, so registrations may share them)."""

    objects: dict[str, RegisteredObjects | None] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)

    def links(self, text: str) -> RegisteredObjects | None:
        if text not in self.objects:
            self.objects[text] = parse_objects(None, text.encode()) if text else None
        return self.objects[text]

    def path(self, text: str) -> Path:
        path = self.paths.get(text)
        if path is None:
            path = self.paths[text] = Path.parse(text)
        return path


def from_document(
    endpoint: str,
    device_id: str,
    document: dict[str, Any],
    *,
    now: float,
    wall_now: float,
    unbounded: float = UNBOUNDED_KEEP,
    parsed: _Parsed | None = None,
) -> RegistrationSnapshot:
    """The snapshot of a stored document, its registration placed on the monotonic clock `now` so that it
    expires when the stored one would have."""
    parsed = parsed or _Parsed()
    if document.get("format") != FORMAT:
        raise SnapshotError(f"registration document of format {document.get('format')!r}")
    try:
        expires = float(document["expires"])
        lifetime = int(document["lifetime"])
        objects = parsed.links(str(document["links"]))
        registration = Registration(
            reg_id=str(document["reg_id"]),
            identity=DeviceIdentity(endpoint, device_id, bool(document.get("authenticated", False))),
            peer=tuple(document["peer"]),
            lifetime=lifetime,
            version=str(document["version"]),
            binding=str(document["binding"]),
            queue_mode=bool(document["queue_mode"]),
            objects=objects if objects is not None else NO_OBJECTS,
            registered_at=now,
            # updated_at + lifetime is the expiry: the time left on the wall clock, carried over.
            updated_at=now + (expires - wall_now) - (lifetime or unbounded),
            sms=document.get("sms"),
        )
        observations = tuple(
            ObservationSnapshot(
                bytes.fromhex(item["token"]),
                tuple(parsed.path(p) for p in item["paths"]),
                int(item["content_format"]),
                bool(item["composite"]),
            )
            for item in document.get("observations", ())
        )
    except (KeyError, TypeError, ValueError, Lwm2mFormatError) as error:
        raise SnapshotError(f"damaged registration document: {error!r}") from None
    if len(registration.peer) < 2:
        raise SnapshotError(f"damaged registration document: address {registration.peer!r}")
    return RegistrationSnapshot(registration, observations, expires, bool(document.get("settled", False)))


@dataclass(frozen=True, slots=True)
class RestorePlan:
    restore: tuple[RegistrationSnapshot, ...]
    delete: tuple[str, ...]  # endpoints: expired while the translator was away, or unreadable


def plan_restore(
    documents: Iterable[tuple[str, str, dict[str, Any]]],
    *,
    grace: float,
    now: float,
    wall_now: float,
    unbounded: float = UNBOUNDED_KEEP,
) -> RestorePlan:
    """Which stored registrations come back: those whose lifetime plus grace has not passed."""
    restore: list[RegistrationSnapshot] = []
    delete: list[str] = []
    parsed = _Parsed()
    for endpoint, device_id, document in documents:
        try:
            snapshot = from_document(
                endpoint,
                device_id,
                document,
                now=now,
                wall_now=wall_now,
                unbounded=unbounded,
                parsed=parsed,
            )
        except SnapshotError:
            delete.append(endpoint)
            continue
        if snapshot.remaining(wall_now) + grace <= 0:
            delete.append(endpoint)
        else:
            restore.append(snapshot)
    return RestorePlan(tuple(restore), tuple(delete))


class RegistrationJournal(Protocol):
    """Told whenever what a snapshot of `endpoint` holds has changed (registered, updated, moved, observed,
    gone); it keeps the latest state somewhere that survives a restart."""

    def changed(self, endpoint: str) -> None: ...


class NoJournal:
    """Nothing survives a restart (tests, the simulator's own server)."""

    def changed(self, endpoint: str) -> None:
        return None
