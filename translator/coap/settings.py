"""Settings of the CoAP face, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CoapSettings:
    host: str = "::"  # "::" serves IPv4 and IPv6; "0.0.0.0"/"127.0.0.1" or an IPv6 address restrict it
    port: int = 5683  # 0: an ephemeral port (tests)
    grace: float = 30.0  # seconds a registration survives past its lifetime
    # Lifetime 0 ("infinite" in the OMA Server object): the registration is kept this long after the device
    # was last heard (Register, Update, Send, notification), then it expires like any other.
    unbounded_lifetime: float = 7 * 86400.0
    queue_window: float = 93.0  # a queue-mode client listens this long after it sent (MAX_TRANSMIT_WAIT)
    queue_deadline: float = 60.0  # default deadline of a request held for a sleeping client
    request_timeout: float = 10.0  # default bound of one downlink exchange
    composite_timeout: float = 5.0  # composite ops: some clients ACK and never answer
    sink_timeout: float = 10.0  # a confirmable telemetry message not confirmed by then gets 5.03
    max_payload: int = 64 * 1024  # bigger request payloads get 4.13 (block-wise: as soon as it passes)
    auto_register: bool = True  # False: only endpoints / device ids in `allow` may register
    # With a real IoT Central (iotc.id_scope) the plain port admits only `allow`-listed endpoints unless this
    # is true (a warning at start-up): plain UDP cannot tell a device from anyone who knows its name.
    insecure_auto_register: bool = False
    dtls: bool = True  # DTLS 1.2 with per-device PSKs on dtls_port, next to plain CoAP on port
    dtls_port: int = 5684  # 0: an ephemeral port (tests)
    dtls_max_sessions: int = 10_000  # open DTLS sessions (~40-80 KB each); the least recently heard goes
    dtls_max_handshakes: int = 1_000  # handshakes under way (past the cookie exchange); the oldest goes
    dtls_handshake_timeout: float = 30.0  # a handshake not finished by then is dropped
    dtls_idle_timeout: float = 1800.0  # a session not heard from for this long is closed (close_notify)
    # Device certificates (ECDHE-ECDSA-AES128-CCM8): the server's chain and key, and the CA device
    # certificates must chain to; a device acts as the endpoint its certificate names (CN, else first SAN).
    dtls_certificate: Path | None = None
    dtls_private_key: Path | None = None
    dtls_client_ca: Path | None = None
    allow: tuple[str, ...] = ()
    tick: float = 1.0  # housekeeping period (expiry, deadlines, sweeps)
    hot_path: bool = True  # the hand-parsed telemetry path in front of aiocoap
    receive_buffer: int = 4 * 1024 * 1024  # UDP SO_RCVBUF for bursts (capped at rmem_max); 0: system default
    # Devices being set up at once (session, property Reads, Write-Attributes, Observes) and set-ups started
    # per second: a restart with many registrations or a registration flood does not burst downlinks.
    setup_concurrency: int = 500
    setup_rate: float = 100.0
    dedup_per_peer: int = 32
    dedup_max_peers: int = 50_000
    dedup_max_entries: int = 200_000  # message ids remembered in all (~0.2 KB each)
    dedup_lifetime: float = 247.0
    max_registrations: int = 100_000  # registered endpoints; a new one beyond gets 5.03 Max-Age 60
    block_transfers: int = 256  # Block1 transfers open at once (each holds up to max_payload); more: 5.03
    block_lifetime: float = 60.0  # a Block1 transfer not continued for this long is dropped

    @property
    def bind(self) -> tuple[str, int]:
        return (self.host, self.port)
