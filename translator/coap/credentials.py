"""Device credentials for the secured CoAP face: what a DTLS handshake looks up, and what the plain port
checks before it lets an endpoint in.

The lookups are asynchronous: the store may be remote, and a handshake waits for its key without holding
the event loop (dtls/sessions.py holds the ClientKeyExchange meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from translator.coap.errors import BackPressure

MIN_PSK = 16  # bytes: LwM2M's suites are AES-128; a shorter secret is guessable offline from one handshake
MAX_PSK = 64  # bytes (RFC 4279 §5.3 asks implementations to support at least 64)
MAX_IDENTITY = 127  # bytes (RFC 4279 §5.3 asks for 128 including OpenSSL's terminating NUL)


@dataclass(frozen=True, slots=True)
class PskCredential:
    """A device's PSK: the identity it presents, the key, and the one endpoint it may act as."""

    identity: str
    key: bytes
    endpoint: str

    def __repr__(self) -> str:  # keys never reach a log line
        return f"PskCredential(identity={self.identity!r}, endpoint={self.endpoint!r}, key=<hidden>)"


def check_psk(identity: str, key: bytes) -> None:
    """Raise ValueError for an identity or key a DTLS client could not use (or should not)."""
    size = len(identity.encode("utf-8"))
    if not 0 < size <= MAX_IDENTITY or "\0" in identity:
        raise ValueError(f"PSK identity must be 1..{MAX_IDENTITY} bytes of UTF-8 without NUL")
    if not MIN_PSK <= len(key) <= MAX_PSK:
        raise ValueError(f"PSK must be {MIN_PSK}..{MAX_PSK} bytes (got {len(key)})")


class Credentials(Protocol):
    async def psk(self, identity: str) -> PskCredential | None:
        """The credential presented as `identity`, or None."""
        ...

    async def secured(self, endpoint: str) -> bool:
        """Whether `endpoint` has credentials: then only a secured session may act as it."""
        ...


class MemoryCredentials:
    """Credentials held in a dict (tests, and the simulator's fleet)."""

    def __init__(self, credentials: list[PskCredential] | None = None) -> None:
        self._by_identity: dict[str, PskCredential] = {}
        for credential in credentials or ():
            self.put(credential)

    def put(self, credential: PskCredential) -> None:
        self._by_identity[credential.identity] = credential

    def remove(self, identity: str) -> None:
        self._by_identity.pop(identity, None)

    async def psk(self, identity: str) -> PskCredential | None:
        return self._by_identity.get(identity)

    async def secured(self, endpoint: str) -> bool:
        return any(item.endpoint == endpoint for item in self._by_identity.values())


class PskSource(Protocol):
    """What a store offers (translator/store: `PskEntry` rows with identity, endpoint, key)."""

    async def psk_for_identity(self, identity: str) -> Any: ...

    async def psk_for_endpoint(self, endpoint: str) -> Any: ...


class StoreCredentials:
    """Credentials read from the store at each handshake and plain-port check: an edit (a new
    `devices import`, even by another process on the same SQLite file) applies without a restart."""

    def __init__(
        self, store: PskSource, *, unavailable: type[Exception] | None = None, retry_after: int = 5
    ) -> None:
        """`unavailable`: what the store raises when it cannot answer now (an unreachable Redis): the
        plain-port check then refuses the request 5.03 with Max-Age `retry_after`, not 5.00."""
        self._store = store
        self._unavailable = unavailable
        self._retry_after = retry_after

    async def psk(self, identity: str) -> PskCredential | None:
        entry = await self._store.psk_for_identity(identity)
        return None if entry is None else PskCredential(entry.identity, entry.key, entry.endpoint)

    async def secured(self, endpoint: str) -> bool:
        try:
            return await self._store.psk_for_endpoint(endpoint) is not None
        except Exception as error:
            if self._unavailable is None or not isinstance(error, self._unavailable):
                raise
            raise BackPressure(
                f"the store cannot be read now: {error}", retry_after=self._retry_after
            ) from error
