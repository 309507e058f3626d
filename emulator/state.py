"""The emulated application: enrollment, devices and twins, kept in memory and saved as one JSON file.

Pure data and pure operations; `app.py` decides when to write the file.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emulator.private_files import private_dir, write_private

STATE_FILE = "application.json"
COMPONENT_MARKER = "__t"


def utc_now_iso(now: float | None = None) -> str:
    moment = dt.datetime.now(dt.UTC) if now is None else dt.datetime.fromtimestamp(now, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch, as IoT Hub applies it to twin sections: null deletes, objects merge."""
    result = dict(target)
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        elif isinstance(value, dict) and isinstance(result.get(name), dict):
            result[name] = merge_patch(result[name], value)
        elif isinstance(value, dict):
            result[name] = merge_patch({}, value)
        else:
            result[name] = value
    return result


def _leaf_names(patch: dict[str, Any]) -> list[str]:
    """`name` per property of a twin patch, `component/name` inside a component (the `__t: c` marker)."""
    names: list[str] = []
    for name, value in patch.items():
        if name == COMPONENT_MARKER or name.startswith("$"):
            continue
        if isinstance(value, dict) and value.get(COMPONENT_MARKER) == "c":
            names += [f"{name}/{inner}" for inner in value if inner != COMPONENT_MARKER]
        else:
            names.append(name)
    return names


@dataclass(slots=True)
class Twin:
    desired: dict[str, Any] = field(default_factory=dict)
    desired_version: int = 1
    reported: dict[str, Any] = field(default_factory=dict)
    reported_version: int = 1
    # IoT Central's per-property metadata: when each reported value last changed, and which desired
    # version last set each desired value ("name" or "component/name").
    reported_times: dict[str, str] = field(default_factory=dict)
    desired_versions: dict[str, int] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "desired": {**self.desired, "$version": self.desired_version},
            "reported": {**self.reported, "$version": self.reported_version},
        }

    def patch_reported(self, patch: dict[str, Any], now: str | None = None) -> int:
        self.reported = merge_patch(self.reported, patch)
        self.reported_version += 1
        moment = now or utc_now_iso()
        for name in _leaf_names(patch):
            self.reported_times[name] = moment
        return self.reported_version

    def patch_desired(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a service-side desired patch; return the patch document the device is sent."""
        self.desired = merge_patch(self.desired, patch)
        self.desired_version += 1
        for name in _leaf_names(patch):
            self.desired_versions[name] = self.desired_version
        return {**patch, "$version": self.desired_version}


@dataclass(slots=True)
class C2DMessage:
    message_id: str
    payload: str  # the body as text; IoT Central's command requests are JSON
    properties: dict[str, str]
    expiry: float  # epoch seconds
    enqueued: str


@dataclass(slots=True)
class Device:
    device_id: str
    display_name: str = ""
    enabled: bool = True
    provisioned: bool = False
    model_id: str = ""  # the model id the device announced (DPS payload or hub username)
    # The device template, "" for Unassigned; decided once, when the device first connects.
    template: str = ""
    template_decided: bool = False
    revision: int = 0  # bumped by each REST update of the device: its etag
    assigned_hub: str = ""
    attestation: str = "symmetricKey"
    created: str = field(default_factory=utc_now_iso)
    last_provisioned: str = ""
    twin: Twin = field(default_factory=Twin)
    # last telemetry value per "name" or "component/name": {"timestamp", "value"}
    telemetry: dict[str, dict[str, Any]] = field(default_factory=dict)
    c2d: list[C2DMessage] = field(default_factory=list)

    def etag(self) -> str:
        return f'"{self.revision}"'

    def api_view(self) -> dict[str, Any]:
        """The device as IoT Central's REST API shows it; an Unassigned device has no `template`."""
        view: dict[str, Any] = {
            "id": self.device_id,
            "etag": self.etag(),
            "displayName": self.display_name or self.device_id,
            "enabled": self.enabled,
            "provisioned": self.provisioned,
            "simulated": False,
        }
        if self.template:
            view["template"] = self.template
        return view


@dataclass(slots=True)
class Application:
    id_scope: str
    group_primary_key: str
    group_secondary_key: str
    devices: dict[str, Device] = field(default_factory=dict)
    # Published device templates by id, as `GET /api/deviceTemplates/{id}` returns them.
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    api_token: str = ""  # generated once when the REST API requires one and none is configured
    # Gateway → downstream device relations by id: {"source": gateway, "target": device} (relationships.py)
    relationships: dict[str, dict[str, str]] = field(default_factory=dict)

    def device(self, device_id: str) -> Device | None:
        return self.devices.get(device_id)

    def ensure_device(self, device_id: str) -> Device:
        device = self.devices.get(device_id)
        if device is None:
            device = self.devices[device_id] = Device(device_id)
        return device

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Application:
        raw = json.loads(text)
        devices: dict[str, Device] = {}
        for device_id, entry in raw.get("devices", {}).items():
            twin = Twin(**entry.pop("twin", {}))
            messages = [C2DMessage(**message) for message in entry.pop("c2d", [])]
            devices[device_id] = Device(**entry, twin=twin, c2d=messages)
        return cls(
            raw["id_scope"],
            raw["group_primary_key"],
            raw["group_secondary_key"],
            devices,
            raw.get("templates", {}),
            raw.get("api_token", ""),
            raw.get("relationships", {}),
        )


def new_group_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def new_api_token(application_id: str) -> str:
    # IoT Central API tokens are SAS strings: "SharedAccessSignature sr=<app>&sig=<sig>&skn=<name>&se=<ms>".
    signature = base64.b64encode(secrets.token_bytes(32)).decode()
    return f"SharedAccessSignature sr={application_id}&sig={signature}&skn=emulator&se=4102444800000"


def new_id_scope() -> str:
    # IoT Central scopes look like "0ne" followed by eight hex digits.
    return "0ne" + secrets.token_hex(4).upper()


def load_application(state_dir: Path, *, id_scope: str, primary: str, secondary: str) -> Application:
    """The saved application, or a new one; explicit settings win over saved values."""
    path = state_dir / STATE_FILE
    if path.exists():
        application = Application.from_json(path.read_text())
    else:
        application = Application(new_id_scope(), new_group_key(), new_group_key())
    if id_scope:
        application.id_scope = id_scope
    if primary:
        application.group_primary_key = primary
    if secondary:
        application.group_secondary_key = secondary
    return application


def save_application(state_dir: Path, application: Application) -> None:
    # The group keys derive every device key: private from the first byte (0600 in a 0700 directory).
    write_private(private_dir(state_dir) / STATE_FILE, application.to_json().encode())
