"""Settings of the CoAP face, built once at start-up.

A pydantic dataclass: every field declares its bounds, so `CoapSettings(tick=0)` (or
`dataclasses.replace(settings, tick=0)`) fails at once naming the field, not at the first housekeeping
pass. The descriptions are the README's configuration reference (`iotc-translator config reference`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass

from translator.settings_types import SECTION, OptionalFile


def _comma_separated(raw: object) -> object:
    # The environment gives "a, b" (its values are not decoded as JSON); TOML gives a list.
    if isinstance(raw, str):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return raw


Names = Annotated[tuple[str, ...], BeforeValidator(_comma_separated)]


@dataclass(frozen=True, slots=True, config=SECTION)
class CoapSettings:
    host: str = Field(
        default="::",
        min_length=1,
        description='"::" serves IPv4 and IPv6; "0.0.0.0", "127.0.0.1" or an IPv6 address restrict it',
    )
    port: int = Field(default=5683, ge=0, le=65535, description="UDP port; 0 picks a free one (tests)")
    grace: float = Field(default=30.0, ge=0, description="seconds a registration survives past its lifetime")
    unbounded_lifetime: float = Field(
        default=7 * 86400.0,
        gt=0,
        description='lifetime 0 ("infinite"): the registration is kept this long after the device was last '
        "heard (Register, Update, Send, notification)",
    )
    queue_window: float = Field(
        default=93.0,
        gt=0,
        description="a queue-mode client listens this long after it sent (MAX_TRANSMIT_WAIT)",
    )
    queue_deadline: float = Field(
        default=60.0, gt=0, description="how long downlinks wait for a sleeping (queue-mode) device"
    )
    request_timeout: float = Field(default=10.0, gt=0, description="default bound of one downlink exchange")
    composite_timeout: float = Field(
        default=5.0, gt=0, description="composite operations: some clients acknowledge and never answer"
    )
    sink_timeout: float = Field(
        default=10.0, gt=0, description="confirmable telemetry not safe by then is answered 5.03"
    )
    # A Block1 block is 16 bytes at least (RFC 7959 §2.2, SZX 0): a smaller limit refuses every request.
    max_payload: int = Field(
        default=64 * 1024,
        ge=16,
        description="bigger request payloads get 4.13 (block-wise: as soon as the size passes it)",
    )
    auto_register: bool = Field(
        default=True, description="false: only endpoints / device ids in `allow` register"
    )
    # With a real IoT Central (iotc.id_scope) the plain port admits only `allow`-listed endpoints unless this
    # is true (a warning at start-up): plain UDP cannot tell a device from anyone who knows its name.
    insecure_auto_register: bool = Field(
        default=False,
        description="with a real IoT Central, let any endpoint name register on the plain port (a warning)",
    )
    dtls: bool = Field(
        default=True, description="DTLS 1.2 with per-device PSKs on dtls_port, next to plain CoAP on port"
    )
    dtls_port: int = Field(default=5684, ge=0, le=65535, description="DTLS UDP port; 0 picks a free one")
    dtls_max_sessions: int = Field(
        default=10_000, ge=1, description="open DTLS sessions (~65-75 KB each); the least recently heard goes"
    )
    dtls_max_handshakes: int = Field(
        default=1_000, ge=1, description="handshakes under way (past the cookie exchange); the oldest goes"
    )
    dtls_handshake_timeout: float = Field(
        default=30.0, gt=0, description="a handshake not finished by then is dropped"
    )
    dtls_idle_timeout: float = Field(
        default=1800.0, gt=0, description="a session not heard from for this long is closed (close_notify)"
    )
    # Device certificates (ECDHE-ECDSA-AES128-CCM8): the server's chain and key, and the CA device
    # certificates must chain to; a device acts as the endpoint its certificate names (CN, else first SAN).
    dtls_private_key: OptionalFile = Field(default=None, description="the key of dtls_certificate")
    dtls_client_ca: OptionalFile = Field(default=None, description="the CA device certificates must chain to")
    dtls_certificate: OptionalFile = Field(
        default=None,
        validate_default=True,  # the triple check runs when only the key or the CA is given
        description="the server's chain for DTLS device certificates, with the two above (README: Security)",
    )
    allow: Names = Field(
        default=(), description="endpoints or device ids allowed when auto_register is false"
    )
    tick: float = Field(
        default=1.0, gt=0, le=60, description="housekeeping period in seconds (expiry, deadlines, sweeps)"
    )
    hot_path: bool = Field(default=True, description="the hand-parsed telemetry path in front of aiocoap")
    receive_buffer: int = Field(
        default=4 * 1024 * 1024,
        ge=0,
        description="UDP receive buffer for bursts (Linux caps it at net.core.rmem_max); 0: system default",
    )
    setup_concurrency: int = Field(
        default=500, ge=1, description="devices being set up at once (session, property Reads, Observes)"
    )
    setup_rate: float = Field(
        default=100.0,
        gt=0,
        description="set-ups started per second: restarts and floods do not burst downlinks",
    )
    dedup_per_peer: int = Field(
        default=32, ge=1, description="message ids remembered per peer for duplicates"
    )
    dedup_max_peers: int = Field(default=50_000, ge=1, description="peers whose message ids are remembered")
    dedup_max_entries: int = Field(
        default=200_000, ge=1, description="message ids remembered in all (~0.2 KB each; docs/coap.md)"
    )
    dedup_lifetime: float = Field(
        default=247.0, gt=0, description="seconds a message id is remembered (RFC 7252 EXCHANGE_LIFETIME)"
    )
    max_registrations: int = Field(
        default=100_000, ge=1, description="registered endpoints; a new endpoint beyond gets 5.03 Max-Age 60"
    )
    block_transfers: int = Field(
        default=256,
        ge=1,
        description="Block1 transfers open at once (each holds up to max_payload); more: 5.03",
    )
    block_lifetime: float = Field(
        default=60.0, gt=0, description="a Block1 transfer not continued for this long is dropped"
    )

    @field_validator("dtls_certificate", "dtls_private_key", "dtls_client_ca")
    @classmethod
    def _a_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path} is not a file")
        return path

    @field_validator("dtls_certificate")
    @classmethod
    def _all_three(cls, certificate: Path | None, info: ValidationInfo) -> Path | None:
        chosen = (certificate, info.data.get("dtls_private_key"), info.data.get("dtls_client_ca"))
        if any(chosen) and not all(chosen):
            raise ValueError("give dtls_certificate, dtls_private_key and dtls_client_ca, or none")
        return certificate

    @field_validator("dtls_port")
    @classmethod
    def _apart(cls, port: int, info: ValidationInfo) -> int:
        if info.data.get("dtls", True) and port != 0 and port == info.data.get("port"):
            raise ValueError("must differ from coap.port (plain CoAP and DTLS run side by side)")
        return port

    @property
    def bind(self) -> tuple[str, int]:
        return (self.host, self.port)
