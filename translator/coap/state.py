"""What the CoAP face keeps per registered endpoint: its registration, held downlinks, observations, and
the content formats that worked with it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from translator.coap.errors import DevicePayloadError
from translator.coap.observe import ObservationSequence
from translator.coap.queue import DownlinkQueue
from translator.coap.registration import Registration
from translator.coap.requests import DownlinkRequest
from translator.lwm2m import Lwm2mFormatError, Path, Record, ResourceLookup, decode


@dataclass(frozen=True, slots=True)
class ObservationHandle:
    """An established observation. `records` are the values of its first response (also delivered to
    the sink as NOTIFY)."""

    endpoint: str
    paths: tuple[Path, ...]
    token: bytes
    content_format: int
    records: tuple[Record, ...]
    composite: bool = False


@dataclass(slots=True)
class Observation:
    endpoint: str
    reg_id: str
    paths: tuple[Path, ...]
    token: bytes
    content_format: int
    composite: bool
    seq: ObservationSequence = field(default_factory=ObservationSequence)
    cancelled: bool = False

    @property
    def base(self) -> Path:
        return self.paths[0] if len(self.paths) == 1 and not self.composite else Path()


@dataclass(slots=True)
class Held:
    """A request waiting for a queue-mode device to wake."""

    request: DownlinkRequest[Any]
    timeout: float
    future: asyncio.Future[Any]


@dataclass(slots=True)
class Device:
    """The shell's state for one registered endpoint."""

    registration: Registration
    lookup: ResourceLookup
    queue: DownlinkQueue[Held]
    observations: dict[tuple[Path, ...], Observation] = field(default_factory=dict)
    formats: dict[str, int] = field(default_factory=dict)  # what worked, by operation kind
    composite: bool | None = None  # None: not tried yet
    flusher: asyncio.Task[None] | None = None
    settled: bool = False  # the sink finished setting this registration up (kept across a restart)

    def preferred(self, kind: str, candidates: list[int]) -> list[int]:
        """`candidates` with the format that last worked for `kind` first."""
        known = self.formats.get(kind)
        if known is not None and known in candidates:
            return [known, *(c for c in candidates if c != known)]
        return candidates

    def decode_answer(
        self, content_format: int, payload: bytes, base: Path, *, now: float, max_payload: int
    ) -> list[Record]:
        """The records of the device's answer; DevicePayloadError when they cannot be decoded."""
        try:
            return decode(
                content_format,
                bytes(payload),
                base_path=base,
                registry=self.lookup,
                now=now,
                max_payload=max_payload,
            )
        except Lwm2mFormatError as exc:
            endpoint = self.registration.endpoint
            raise DevicePayloadError(endpoint, f"undecodable answer: {exc.reason}") from None
