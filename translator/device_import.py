"""`iotc-translator devices import devices.csv`: pre-register endpoints, like IoT Central's CSV import.

Columns (header names, case-insensitive; only `deviceId` is required):
`deviceId, endpoint, codec, modelId, symmetricKey, certificate, privateKey, connectionString, pskIdentity,
pskKey, connection`; any other column (`site`, `building`, `customer`…) is kept with the device for its
codec's enrichment (docs/codec.md, "Ingress transforms"), except a near-miss of a known one (`symetricKey`),
refused as the typo it likely is. `connection` is `persistent` or `ephemeral` (telemetry only, no held
session; it wins over the codec's `connection`). `pskIdentity` and `pskKey` (hex, 16..64 bytes, as LwM2M
servers take it) secure the endpoint: it then registers only over DTLS with that identity, never on the
plain port.
`endpoint` defaults to the device id. A `connectionString` (`HostName=...;DeviceId=...;SharedAccessKey=...`)
makes the device a plain IoT Hub device: no DPS, straight to that hub.

The device id is pinned as given (the endpoint → device id rule does not apply to it), so it is checked here
against what the services accept (`translator/iotc/protocol/ids.py`): an IoT Hub device id, and a DPS
registration id unless the row connects straight to a hub.
"""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass

from translator.coap.credentials import check_psk
from translator.codec.spec import CONNECTIONS
from translator.iotc.protocol.ids import id_problem
from translator.store import DeviceEntry, HubAssignment, PskEntry

_COLUMNS = {
    "deviceid": "device_id",
    "endpoint": "endpoint",
    "codec": "codec",
    "modelid": "model_id",
    "symmetrickey": "symmetric_key",
    "certificate": "certificate",
    "privatekey": "private_key",
    "connectionstring": "connection_string",
    "pskidentity": "psk_identity",
    "pskkey": "psk_key",
    "connection": "connection",
}


_HEADERS = (
    "deviceId",
    "endpoint",
    "codec",
    "modelId",
    "symmetricKey",
    "certificate",
    "privateKey",
    "connectionString",
    "pskIdentity",
    "pskKey",
    "connection",
)
_CANONICAL = {header.lower(): header for header in _HEADERS}  # as a typo's suggestion spells it


class ImportError_(ValueError):
    """A row or column of the CSV is unusable; the message names it."""


@dataclass(frozen=True, slots=True)
class ImportedDevice:
    entry: DeviceEntry
    assignment: HubAssignment | None  # set for IoT Hub connection strings
    psk: PskEntry | None = None


def parse_connection_string(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r} is not name=value")
        parts[name.strip()] = value.strip()
    missing = [name for name in ("HostName", "DeviceId", "SharedAccessKey") if not parts.get(name)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return parts


def parse_devices_csv(text: str) -> list[ImportedDevice]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None:
        raise ImportError_("the file is empty")
    columns: dict[str, str] = {}
    extra: list[str] = []
    for name in reader.fieldnames:
        normalized = name.strip().replace("_", "").replace(" ", "").lower()
        if normalized in _COLUMNS:
            columns[name] = _COLUMNS[normalized]
            continue
        near = difflib.get_close_matches(normalized, _COLUMNS, n=1, cutoff=0.8)
        if near or not normalized:
            known = f"did you mean {_CANONICAL[near[0]]}?" if near else "a column needs a name"
            raise ImportError_(f"column {name!r} is unknown: {known} (other columns are kept for enrichment)")
        extra.append(name)
    if "device_id" not in columns.values():
        raise ImportError_("a deviceId column is required")
    devices: list[ImportedDevice] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        values = {columns[name]: (value or "").strip() for name, value in row.items() if name in columns}
        device_id = values.get("device_id", "")
        if not device_id:
            raise ImportError_(f"line {line}: deviceId is empty")
        if device_id in seen:
            raise ImportError_(f"line {line}: device {device_id!r} appears twice")
        seen.add(device_id)
        assignment = None
        key: str | None = values.get("symmetric_key") or None
        if values.get("connection_string"):
            try:
                parts = parse_connection_string(values["connection_string"])
            except ValueError as error:
                raise ImportError_(f"line {line}: connectionString: {error}") from None
            assignment = HubAssignment(parts["HostName"], parts["DeviceId"])
            key = parts["SharedAccessKey"]
        problem = id_problem(device_id, via_dps=assignment is None)
        if problem:
            raise ImportError_(f"line {line}: deviceId {problem}")
        if bool(values.get("certificate")) != bool(values.get("private_key")):
            raise ImportError_(f"line {line}: certificate and privateKey go together")
        entry = DeviceEntry(
            device_id=device_id,
            endpoint=values.get("endpoint") or device_id,
            codec=values.get("codec") or None,
            model_id=values.get("model_id") or None,
            symmetric_key=key,
            certificate=values.get("certificate") or None,
            private_key=values.get("private_key") or None,
            attributes=tuple((n.strip(), v.strip()) for n in extra if (v := row.get(n) or "").strip()),
            connection=_connection(line, values.get("connection", "")),
        )
        devices.append(ImportedDevice(entry, assignment, _psk(line, entry.endpoint, values)))
    return devices


def _connection(line: int, value: str) -> str | None:
    """`persistent` or `ephemeral` (README: ephemeral devices); empty: as the device's codec says."""
    if not value:
        return None
    if value.lower() not in CONNECTIONS:
        raise ImportError_(f"line {line}: connection {value!r} is not one of {', '.join(CONNECTIONS)}")
    return value.lower()


def _psk(line: int, endpoint: str, values: dict[str, str]) -> PskEntry | None:
    identity, hex_key = values.get("psk_identity", ""), values.get("psk_key", "")
    if not identity and not hex_key:
        return None
    if not identity or not hex_key:
        raise ImportError_(f"line {line}: pskIdentity and pskKey go together")
    try:
        key = bytes.fromhex(hex_key)
        check_psk(identity, key)
    except ValueError as error:  # neither message quotes the key
        raise ImportError_(f"line {line}: pskIdentity/pskKey: {error}") from None
    return PskEntry(identity, endpoint, key)
