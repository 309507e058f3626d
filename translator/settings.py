"""The translator's settings: one object, built once at start-up from a TOML file, the environment
(`IOTC_TRANSLATOR_<SECTION>_<NAME>`) and command-line flags, in that order of precedence (flags win).

Every error names the field (`coap.port: ...`), so a bad file fails at start-up, not at the first device.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import importlib.util
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from translator.coap.settings import CoapSettings

ENV_PREFIX = "IOTC_TRANSLATOR_"


class SettingsError(ValueError):
    """A setting is invalid; the message starts with its dotted name."""


@dataclass(frozen=True, slots=True)
class IotcSettings:
    """Where devices go: IoT Central (ID scope + group key, or an X.509 enrollment CA), plain IoT Hub
    (per-device connection strings, from `devices import`), or — with none — the built-in emulator."""

    id_scope: str = ""
    group_key: str = ""  # SAS group enrollment key (primary or secondary)
    x509_ca_cert: Path | None = None  # enrollment CA certificate and key, to mint device certificates
    x509_ca_key: Path | None = None
    dps_host: str = "global.azure-devices-provisioning.net"
    dps_port: int = 8883
    hub_port: int = 8883
    ca_file: Path | None = None  # trust this CA instead of the system's (the emulator's)
    gateway_host: str | None = None  # dial hubs here instead of at their names (the emulator)
    transport: str = "lean"  # lean | aiomqtt
    max_sessions: int = 100_000
    connect_rate: float = 100.0  # new connections per second (IoT Hub S1 admits about 100)
    idle_timeout: float = 0.0  # seconds; 0 keeps every session open
    keep_alive: int = 300
    reconnect_min: float = 1.0  # reconnect backoff: full jitter under min(reconnect_max, min * 2**attempt)
    reconnect_max: float = 60.0
    token_ttl: int = 3600
    telemetry_timeout: float = 5.0  # a publish not acknowledged by then goes to the outbox
    command_deadline: float = 25.0  # IoT Central gives up at 30 s: answer before it does

    @property
    def configured(self) -> bool:
        return bool(self.id_scope and (self.group_key or self.x509_ca_cert))


@dataclass(frozen=True, slots=True)
class CodecSettings:
    directory: Path = Path("codecs")  # codec files override the default codec per object
    ddf_directory: Path | None = None  # extra OMA DDF object definitions


@dataclass(frozen=True, slots=True)
class StoreSettings:
    path: Path | None = None  # default: <state_dir>/translator.db
    outbox_limit: int = 100_000
    outbox_device_limit: int = 10_000
    # A shared Redis (redis://host:port/db, rediss://, unix://) instead of the SQLite file: the store of
    # several translators. Run it with appendonly yes, appendfsync always (docs/cluster.md).
    redis_url: str = ""
    redis_prefix: str = "iotct:"  # every key under it: several deployments can share one Redis


@dataclass(frozen=True, slots=True)
class OperationsSettings:
    host: str = "127.0.0.1"
    port: int = 9100  # /metrics and /healthz; 0 picks a free port


@dataclass(frozen=True, slots=True)
class EmulatorSettings:
    """The embedded IoT Central emulator, started when no IoT Central is configured."""

    host: str = "127.0.0.1"
    mqtt_port: int = 8883
    http_port: int = 8080


@dataclass(frozen=True, slots=True)
class Settings:
    state_dir: Path = Path("state")
    log_level: str = "INFO"
    log_sql: bool = False  # DEBUG logs of SQL with its parameters (device keys, payloads): only when asked
    event_loop: str = "auto"  # "uvloop", "asyncio", or "auto": uvloop when installed
    coap: CoapSettings = field(default_factory=CoapSettings)
    iotc: IotcSettings = field(default_factory=IotcSettings)
    codec: CodecSettings = field(default_factory=CodecSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    operations: OperationsSettings = field(default_factory=OperationsSettings)
    emulator: EmulatorSettings = field(default_factory=EmulatorSettings)

    @property
    def store_path(self) -> Path:
        return self.store.path or self.state_dir / "translator.db"


_SECTIONS = ("coap", "iotc", "codec", "store", "operations", "emulator")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    """Turn a TOML or environment value into `kind`, or raise SettingsError naming `name`."""
    optional = isinstance(kind, types.UnionType) and type(None) in typing.get_args(kind)
    if optional:
        if raw is None or raw == "":
            return None
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return text in ("1", "true", "yes", "on")
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        if kind is Path:
            return Path(str(raw))
        if kind is str:
            if not isinstance(raw, str | int | float):
                raise ValueError(raw)
            return str(raw)
        if typing.get_origin(kind) is tuple:
            items = raw if isinstance(raw, list) else [item for item in str(raw).split(",") if item.strip()]
            return tuple(str(item).strip() for item in items)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: {raw!r} is not a valid {getattr(kind, '__name__', kind)}") from None
    raise SettingsError(f"{name}: unsupported setting type {kind}")


def _apply(target: Any, values: Mapping[str, Any], prefix: str) -> Any:
    types_by_name = _field_types(type(target))
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        name = key.replace("-", "_")
        if name not in types_by_name:
            known = ", ".join(sorted(f.name for f in fields(target)))
            raise SettingsError(f"{prefix}{key}: unknown setting (known: {known})")
        kind = types_by_name[name]
        if dataclasses.is_dataclass(kind):
            if not isinstance(raw, Mapping):
                raise SettingsError(f"{prefix}{key}: expected a table")
            changes[name] = _apply(getattr(target, name), raw, f"{prefix}{name}.")
        else:
            changes[name] = _coerce(f"{prefix}{name}", raw, kind)
    return replace(target, **changes)


def _environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """`IOTC_TRANSLATOR_COAP_PORT=5684` → {"coap": {"port": "5684"}}; `..._STATE_DIR` → the top level."""
    nested: dict[str, Any] = {}
    top = {f.name for f in fields(Settings)} - set(_SECTIONS)
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name in top:
            nested[name] = value
            continue
        section, _, rest = name.partition("_")
        if section not in _SECTIONS or not rest:
            raise SettingsError(f"environment {key}: no such setting")
        nested.setdefault(section, {})[rest] = value
    return nested


def _validate(settings: Settings) -> Settings:
    for name, port in (
        ("coap.port", settings.coap.port),
        ("coap.dtls_port", settings.coap.dtls_port),
        ("iotc.dps_port", settings.iotc.dps_port),
        ("iotc.hub_port", settings.iotc.hub_port),
        ("operations.port", settings.operations.port),
        ("emulator.mqtt_port", settings.emulator.mqtt_port),
        ("emulator.http_port", settings.emulator.http_port),
    ):
        if not 0 <= port <= 65535:
            raise SettingsError(f"{name}: {port} is not a port (0..65535)")
    iotc = settings.iotc
    if iotc.group_key:
        try:
            base64.b64decode(iotc.group_key, validate=True)
        except (binascii.Error, ValueError):
            raise SettingsError("iotc.group_key: not base64") from None
    if (iotc.group_key or iotc.x509_ca_cert) and not iotc.id_scope:
        raise SettingsError("iotc.id_scope: required with a group key or an X.509 enrollment CA")
    if bool(iotc.x509_ca_cert) != bool(iotc.x509_ca_key):
        raise SettingsError("iotc.x509_ca_key: give both x509_ca_cert and x509_ca_key, or neither")
    for name, path in (
        ("iotc.x509_ca_cert", iotc.x509_ca_cert),
        ("iotc.x509_ca_key", iotc.x509_ca_key),
        ("iotc.ca_file", iotc.ca_file),
    ):
        if path is not None and not path.is_file():
            raise SettingsError(f"{name}: {path} is not a file")
    if iotc.transport not in ("lean", "aiomqtt"):
        raise SettingsError(f"iotc.transport: {iotc.transport!r} is not lean or aiomqtt")
    for name, value in (
        ("iotc.connect_rate", iotc.connect_rate),
        ("iotc.telemetry_timeout", iotc.telemetry_timeout),
        ("iotc.command_deadline", iotc.command_deadline),
        ("iotc.reconnect_min", iotc.reconnect_min),
    ):
        if value <= 0:
            raise SettingsError(f"{name}: must be positive")
    if settings.coap.setup_concurrency < 1 or settings.coap.setup_rate <= 0:
        raise SettingsError("coap.setup_concurrency / coap.setup_rate: at least 1 device, a positive rate")
    coap = settings.coap
    if coap.dtls and coap.port == coap.dtls_port != 0:
        raise SettingsError(
            "coap.dtls_port: must differ from coap.port (plain CoAP and DTLS run side by side)"
        )
    chosen = (coap.dtls_certificate, coap.dtls_private_key, coap.dtls_client_ca)
    if any(chosen) and not all(chosen):
        raise SettingsError(
            "coap.dtls_certificate: give dtls_certificate, dtls_private_key and dtls_client_ca"
        )
    for name, path in zip(("dtls_certificate", "dtls_private_key", "dtls_client_ca"), chosen, strict=True):
        if path is not None and not path.is_file():
            raise SettingsError(f"coap.{name}: {path} is not a file")
    if min(coap.dtls_max_sessions, coap.dtls_max_handshakes) < 1:
        raise SettingsError("coap.dtls_max_sessions / coap.dtls_max_handshakes: at least 1")
    if min(coap.dtls_handshake_timeout, coap.dtls_idle_timeout) <= 0:
        raise SettingsError("coap.dtls_handshake_timeout / coap.dtls_idle_timeout: must be positive")
    if settings.coap.receive_buffer < 0:
        raise SettingsError("coap.receive_buffer: must be 0 (system default) or a size in bytes")
    if settings.coap.unbounded_lifetime <= 0:
        raise SettingsError("coap.unbounded_lifetime: must be positive (seconds a lifetime-0 device is kept)")
    if iotc.reconnect_max < iotc.reconnect_min:
        raise SettingsError("iotc.reconnect_max: must be at least iotc.reconnect_min")
    if iotc.max_sessions < 1 or iotc.token_ttl < 300:
        raise SettingsError("iotc.max_sessions / iotc.token_ttl: at least 1 session and 300 s tokens")
    if settings.codec.ddf_directory is not None and not settings.codec.ddf_directory.is_dir():
        raise SettingsError(f"codec.ddf_directory: {settings.codec.ddf_directory} is not a directory")
    if settings.event_loop not in ("auto", "uvloop", "asyncio"):
        raise SettingsError(f"event_loop: {settings.event_loop!r} is not auto, uvloop or asyncio")
    if settings.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise SettingsError("event_loop: uvloop is not installed (pip install uvloop, or use asyncio)")
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"log_level: {settings.log_level!r} is not DEBUG, INFO, WARNING or ERROR")
    return settings


def load_settings(
    *,
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults ← TOML file ← environment ← `overrides` (dotted names from flags: {"coap.port": 5684})."""
    settings = Settings()
    if file is not None:
        try:
            document = tomllib.loads(file.read_text())
        except OSError as error:
            raise SettingsError(f"{file}: cannot read: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"{file}: not valid TOML: {error}") from None
        try:
            settings = _apply(settings, document, "")
        except SettingsError as error:
            raise SettingsError(f"{file}: {error}") from None
    settings = _apply(settings, _environment(os.environ if environ is None else environ), "")
    nested: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, name = dotted.partition(".")
        if name:
            nested.setdefault(section, {})[name] = value
        else:
            nested[section] = value
    settings = _apply(settings, nested, "")
    return _validate(settings)
