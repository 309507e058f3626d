"""The emulator's settings: flags, environment variables (IOTC_EMULATOR_*) and an optional TOML file."""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from emulator.limits import LimitSettings, tier_rate

ENV_PREFIX = "IOTC_EMULATOR_"


class ConfigError(ValueError):
    """A setting is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    state_dir: Path = Path("state/emulator")
    host: str = "127.0.0.1"
    # One TLS listener serves DPS and hub traffic; the CONNECT username tells them apart.
    mqtt_port: int = 8883
    http_port: int = 8080
    # IoT Hub's HTTPS device API (emulator/https_device.py) with the hub's certificate; 443 on a real hub.
    https_port: int = 8443
    id_scope: str = ""  # generated and persisted when empty
    group_primary_key: str = ""  # generated and persisted when empty
    group_secondary_key: str = ""
    x509_enrollment_ca: Path | None = None  # PEM CA of an X.509 group enrollment
    hub_names: tuple[str, ...] = ("iotc-emulator-hub-0.azure-devices.net",)
    dps_retry_after: int = 3  # seconds DPS asks the device to wait before polling
    dps_assign_delay: float = 1.0  # seconds an assignment takes
    # IoT Central's "Auto approve" of a device connection group: off, a device nobody registered that comes
    # with valid credentials waits for an operator's approval (emulator/approval.py).
    auto_approve: bool = True
    method_timeout: float = 30.0  # IoT Central gives up on a command after 30 s
    c2d_ttl: float = 24 * 3600.0
    max_message_bytes: int = 256 * 1024
    max_subscriptions: int = 5
    max_keep_alive: int = 1177
    connect_timeout: float = 10.0  # time from TCP accept to a CONNECT packet
    telemetry_log_size: int = 100_000
    # The REST API requires `Authorization: <token>` as IoT Central does: this token, else one generated
    # and kept in the state directory; `auth = false` turns the check off.
    api_token: str = ""
    auth: bool = True
    # IoT Central's 20 requests/s per application (429 above); 0 turns the limit off (benchmarks).
    rest_rate_limit: float = 20.0
    # Service limits (emulator/limits.py cites Microsoft's numbers); `limits = false` turns all of them off
    # (benchmarks). A rate of 0 takes the hub tier's figure.
    limits: bool = True
    hub_tier: str = "S1"
    hub_units: int = 1
    dps_registrations_per_minute: float = 200.0
    hub_connects_per_second: float = 0.0
    d2c_per_second: float = 0.0
    device_messages_per_second: float = 10.0
    property_updates_per_second: float = 100.0
    shaping_seconds: float = 5.0
    reported_section_bytes: int = 32 * 1024
    property_bytes: int = 4 * 1024
    method_payload_bytes: int = 128 * 1024
    c2d_message_bytes: int = 64 * 1024
    c2d_queue_depth: int = 50
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def validated(self) -> EmulatorConfig:
        for name in ("mqtt_port", "http_port", "https_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name}: {port} is not a TCP port (0..65535)")
        for name in ("group_primary_key", "group_secondary_key"):
            key = getattr(self, name)
            if key:
                try:
                    base64.b64decode(key, validate=True)
                except (binascii.Error, ValueError):
                    raise ConfigError(f"{name}: not base64") from None
        if not self.hub_names or any(not name or "/" in name for name in self.hub_names):
            raise ConfigError("hub_names: give one or more host names")
        if self.dps_retry_after < 0 or self.dps_assign_delay < 0:
            raise ConfigError("dps_retry_after / dps_assign_delay: must not be negative")
        if self.rest_rate_limit < 0:
            raise ConfigError("rest_rate_limit: must not be negative (0 turns the limit off)")
        if self.method_timeout <= 0:
            raise ConfigError("method_timeout: must be positive")
        try:
            tier_rate(self.hub_tier, self.hub_units)
        except ValueError as error:
            raise ConfigError(f"hub_tier: {error}") from None
        for name in (
            "dps_registrations_per_minute",
            "device_messages_per_second",
            "property_updates_per_second",
            "shaping_seconds",
            "reported_section_bytes",
            "property_bytes",
            "method_payload_bytes",
            "c2d_message_bytes",
            "c2d_queue_depth",
            "hub_units",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive")
        if self.hub_connects_per_second < 0 or self.d2c_per_second < 0:
            raise ConfigError("hub_connects_per_second / d2c_per_second: 0 (the tier's) or a positive rate")
        if self.x509_enrollment_ca is not None and not self.x509_enrollment_ca.is_file():
            raise ConfigError(f"x509_enrollment_ca: {self.x509_enrollment_ca} is not a file")
        return self

    def limit_settings(self) -> LimitSettings:
        tier = tier_rate(self.hub_tier, self.hub_units)
        return LimitSettings(
            enabled=self.limits,
            dps_registrations_per_minute=self.dps_registrations_per_minute,
            hub_connects_per_second=self.hub_connects_per_second or tier,
            d2c_per_second=self.d2c_per_second or tier,
            device_messages_per_second=self.device_messages_per_second,
            property_updates_per_second=self.property_updates_per_second,
            shaping_seconds=self.shaping_seconds,
            reported_section_bytes=self.reported_section_bytes,
            property_bytes=self.property_bytes,
            method_payload_bytes=self.method_payload_bytes,
            c2d_message_bytes=self.c2d_message_bytes,
            c2d_queue_depth=self.c2d_queue_depth,
        )


def _coerce(name: str, raw: Any, current: Any) -> Any:
    try:
        if isinstance(current, bool):
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, tuple):
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        if name in ("state_dir", "x509_enrollment_ca"):
            return Path(str(raw)) if raw not in (None, "") else None if name != "state_dir" else current
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: cannot use {raw!r}") from None


def load_config(
    *,
    file: Path | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> EmulatorConfig:
    """Defaults, then the TOML file, then the environment, then explicit overrides (flags)."""
    config = EmulatorConfig()
    known = {f.name: f for f in fields(EmulatorConfig) if f.name != "extra"}
    layers: list[dict[str, Any]] = []
    if file is not None:
        try:
            document = tomllib.loads(file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"{file}: {error}") from None
        section = document.get("emulator", document)
        unknown = sorted(set(section) - set(known))
        if unknown:
            raise ConfigError(f"{file}: unknown setting(s) {', '.join(unknown)}")
        layers.append(section)
    env = os.environ if environ is None else environ
    layers.append(
        {name: env[ENV_PREFIX + name.upper()] for name in known if ENV_PREFIX + name.upper() in env}
    )
    layers.append({k: v for k, v in (overrides or {}).items() if v is not None})
    for layer in layers:
        for name, raw in layer.items():
            if name not in known:
                raise ConfigError(f"unknown setting {name}")
            config = replace(config, **{name: _coerce(name, raw, getattr(config, name))})
    return config.validated()
