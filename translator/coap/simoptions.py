"""What a simulated LwM2M client is (`SimulatorOptions`) and what it holds to begin with (`default_values`).

Pure data, apart from the simulator's aiocoap shells (`simulator.py`, `simobjects.py`), so a caller can build
options without loading the CoAP stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath

from translator.lwm2m import ContentFormat, Path, Value

DEFAULT_FORMATS = frozenset(
    {
        ContentFormat.TEXT,
        ContentFormat.OPAQUE,
        ContentFormat.CBOR,
        ContentFormat.TLV,
        ContentFormat.SENML_JSON,
        ContentFormat.SENML_CBOR,
        ContentFormat.LWM2M_JSON,
        ContentFormat.LWM2M_CBOR,
    }
)


def default_values() -> dict[Path, Value]:
    """Device (3) and Temperature (3303) instances, plus Location (6)."""
    return {
        Path(3, 0, 0): "iotc-translator",
        Path(3, 0, 1): "simulated",
        Path(3, 0, 2): "SIM-0001",
        Path(3, 0, 3): "1.0",
        Path(3, 0, 6, 0): 1,
        Path(3, 0, 6, 1): 5,
        Path(3, 0, 9): 100,
        Path(3, 0, 11, 0): 0,
        Path(3, 0, 14): "+00:00",
        Path(3, 0, 15): "UTC",
        Path(3, 0, 16): "U",
        Path(3303, 0, 5700): 21.5,
        Path(3303, 0, 5701): "Cel",
        Path(3303, 0, 5601): 20.0,
        Path(3303, 0, 5602): 25.0,
        Path(6, 0, 0): 48.85,
        Path(6, 0, 1): 2.35,
    }


@dataclass
class SimulatorOptions:
    version: str = "1.1"
    lifetime: int = 300
    queue_mode: bool = False
    binding_style: str = "query"  # "query": bare Q (1.1+); "b": b=UQ (1.0 style)
    ct_hint: int | None = None  # announce `</>;rt="oma.lwm2m";ct=..`
    formats: frozenset[int] = DEFAULT_FORMATS
    composite: str = "ok"  # "ok", "unsupported" (4.05), "silent" (empty ACK, never answers: Wakaama)
    con_notifications: bool = False  # real clients send NON notifications
    attributes: bool = False  # honour pmin/pmax/gt/lt/st like the 1.2 client (off: notify every change)
    default_format: int = ContentFormat.SENML_JSON
    extra: dict[str, str] = field(default_factory=dict)
    # Writes under these paths are refused with the given CoAP code (0x80 = 4.00, 0xA0 = 5.00, …) and change
    # nothing: a device enforcing its own range, or failing to store the value.
    refuse_writes: dict[Path, int] = field(default_factory=dict)
    # Executes of these resources are refused with the given CoAP code and run nothing: a device that will not
    # reboot now (5.03), or wants an authorisation it was not given (4.01).
    refuse_executes: dict[Path, int] = field(default_factory=dict)
    # Write-Attributes on a resource the device lacks answers 4.04, as the real C clients do.
    strict_attributes: bool = False
    # Real clients' reactions (docs/CLIENTS.md): a 1.1 client goes to "bootstrap required" after a 4.04 to
    # its Update and never comes back; a 1.2 client drops an observation whose notification got RST.
    stop_after_update_not_found: bool = False
    cancel_observation_on_rst: bool = False
    nat: bool = False  # behind a NAT relay (simnat.py): `rebind()` changes the source port the server sees
    # DTLS with this PSK (identity, key) through a relay (dtls/client.py); `server` is then the DTLS port and
    # `rebind()` makes a new handshake from a new port.
    psk: tuple[str, bytes] | None = None
    # DTLS with a certificate instead: (certificate chain, private key, CA of the server's certificate).
    certificate: tuple[FsPath, FsPath, FsPath] | None = None
