"""The translator's settings: one object, built once at start-up from a TOML file, the environment
(`IOTC_TRANSLATOR_<SECTION>_<NAME>`) and command-line flags, in that order of precedence (flags win).

Every field declares its bounds (pydantic), so a bad value stops start-up with a message naming the field
and where it came from (`coap.tick: Input should be greater than 0 (got '0' from IOTC_TRANSLATOR_COAP_TICK)`)
instead of failing later inside a handshake. `Settings(...)` itself is a plain validated value: only
`load_settings` reads the file and the environment (with pydantic-settings' environment source,
translator/settings_environment.py). The README's configuration reference is generated
from these declarations (`iotc-translator config reference`, translator/settings_reference.py).
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from translator.coap.settings import CoapSettings
from translator.gateway.settings import GatewaySettings
from translator.settings_ephemeral import EphemeralSection

ENV_PREFIX = "IOTC_TRANSLATOR_"
# The test suite's own variables (IOTC_TRANSLATOR_TEST_SHARED) share the prefix but are no settings.
_NOT_SETTINGS = ENV_PREFIX + "TEST_"

# IoT Hub accepts a client keep-alive of at most 1177 s (its server side waits 1.5 × that, capped at
# 1767 s): https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub#default-keep-alive-timeout
MAX_KEEP_ALIVE = 1177
# IoT Hub direct methods (IoT Central commands) wait 5..300 s for the device's answer:
# https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-direct-methods#method-invocation-for-iot-hub
MAX_COMMAND_DEADLINE = 300.0


def fields_of(kind: Any) -> Mapping[str, FieldInfo]:
    """A pydantic dataclass's (or model's) fields, in declaration order; none for anything else."""
    found = getattr(kind, "__pydantic_fields__", None)
    return found if isinstance(found, Mapping) else {}


class SettingsError(ValueError):
    """A setting is invalid; the message starts with its dotted name (or the file it came from)."""


def _empty_is_none(raw: object) -> object:
    # `IOTC_TRANSLATOR_IOTC_CA_FILE=` unsets an optional path, as an absent key does.
    return None if raw == "" else raw


OptionalFile = Annotated[Path | None, BeforeValidator(_empty_is_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_empty_is_none)]
Port = Annotated[int, Field(ge=0, le=65535)]
RemotePort = Annotated[int, Field(ge=1, le=65535)]
# Validators are built at first use, not at import: building one loads pydantic's plugin look-up
# (importlib.metadata → email → socket), which importing a pure module must not (tests/test_layers.py).
_SECTION = ConfigDict(extra="forbid", defer_build=True)


@dataclass(frozen=True, slots=True, config=_SECTION)
class IotcSettings:
    """Where devices go: IoT Central (ID scope + group key, or an X.509 enrollment CA), plain IoT Hub
    (per-device connection strings, from `devices import`, with `hub_only`), or — with none — the built-in
    emulator."""

    id_scope: str = Field(default="", description="the ID scope of the IoT Central application's DPS")
    group_key: str = Field(default="", description="SAS group enrollment key (primary or secondary), base64")
    x509_ca_cert: OptionalFile = Field(
        default=None,
        description="an X.509 enrollment CA (with x509_ca_key): device certificates (CN = device id) "
        "are minted",
    )
    x509_ca_key: OptionalFile = Field(default=None, description="the key of x509_ca_cert")
    hub_only: bool = Field(
        default=False,
        description="plain IoT Hub: only devices imported with a connection string connect (no DPS, no ID "
        "scope needed); the built-in emulator is not started",
    )
    dps_host: str = Field(
        default="global.azure-devices-provisioning.net", min_length=1, description="DPS host"
    )
    dps_port: RemotePort = Field(default=8883, description="DPS MQTT port")
    hub_port: RemotePort = Field(default=8883, description="IoT Hub MQTT port")
    ca_file: OptionalFile = Field(
        default=None, description="trust this CA instead of the system's (the emulator's)"
    )
    gateway_host: OptionalStr = Field(
        default=None, description="dial hubs here instead of at their names (the emulator)"
    )
    transport: Literal["lean", "aiomqtt"] = Field(default="lean", description="the MQTT client")
    max_sessions: int = Field(default=100_000, ge=1, description="MQTT sessions open at once")
    # Pacers (translator/iotc/client/pacer.py), each at a quota Microsoft documents; 0 turns a pacer off.
    # DPS: 200 registrations/min — https://learn.microsoft.com/azure/iot-dps/about-iot-dps#quotas-and-limits
    # IoT Hub S1: new connections and device-to-cloud sends, the higher of 100/s or 12/s/unit —
    # https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling
    # IoT Central: a device may send up to 10 messages/s for a while; 100 property updates/s per application —
    # https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits
    dps_registrations_per_minute: float = Field(
        default=200.0, ge=0, description="DPS registrations per minute (DPS's quota); 0: not paced"
    )
    connect_rate: float = Field(
        default=100.0, gt=0, description="new hub connections per second (IoT Hub S1 admits 100)"
    )
    telemetry_rate: float = Field(
        default=100.0, ge=0, description="device-to-cloud messages per second, all devices; 0: not paced"
    )
    device_telemetry_rate: float = Field(
        default=10.0, ge=0, description="device-to-cloud messages per second per device; 0: not paced"
    )
    twin_update_rate: float = Field(
        default=100.0, ge=0, description="reported-property updates per second, all devices; 0: not paced"
    )
    idle_timeout: float = Field(
        default=0.0,
        ge=0,
        description="seconds before an idle session of an unregistered sensor closes; 0: never",
    )
    keep_alive: int = Field(
        default=300, ge=1, le=MAX_KEEP_ALIVE, description="MQTT keep-alive in seconds (IoT Hub: at most 1177)"
    )
    reconnect_min: float = Field(
        default=1.0,
        gt=0,
        description="reconnect backoff: full jitter under min(reconnect_max, reconnect_min × 2^attempt); "
        "back to the start after a PUBACK or 10 s connected",
    )
    reconnect_max: float = Field(default=60.0, gt=0, description="the backoff's ceiling (≥ reconnect_min)")
    approval_retry: float = Field(
        default=60.0,
        gt=0,
        description="a device IoT Central refuses (waiting for approval, blocked) asks DPS again after a "
        "wait drawn from [c/2, c), c = min(approval_retry_max, approval_retry × 2^attempt)",
    )
    approval_retry_max: float = Field(
        default=900.0, gt=0, description="that wait's ceiling (≥ approval_retry)"
    )
    token_ttl: int = Field(
        default=3600, ge=300, description="SAS token lifetime; renewed 2 minutes before expiry"
    )
    telemetry_timeout: float = Field(
        default=5.0, gt=0, description="a publish not acknowledged by then goes to the outbox"
    )
    command_deadline: float = Field(
        default=25.0,
        gt=0,
        le=MAX_COMMAND_DEADLINE,
        description="answer a command by then (IoT Central gives up after 30 s)",
    )

    @field_validator("group_key")
    @classmethod
    def _base64(cls, key: str, info: ValidationInfo) -> str:
        if key:
            try:
                base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("not base64") from None
            if not info.data.get("id_scope"):
                raise ValueError("a group key needs iotc.id_scope")
        return key

    @field_validator("x509_ca_cert", "x509_ca_key", "ca_file")
    @classmethod
    def _a_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path} is not a file")
        return path

    @field_validator("x509_ca_key")
    @classmethod
    def _pair(cls, key: Path | None, info: ValidationInfo) -> Path | None:
        if "x509_ca_cert" in info.data and (key is None) != (info.data["x509_ca_cert"] is None):
            raise ValueError("give both x509_ca_cert and x509_ca_key, or neither")
        if key is not None and not info.data.get("id_scope"):
            raise ValueError("an X.509 enrollment CA needs iotc.id_scope")
        return key

    @field_validator("reconnect_max", "approval_retry_max")
    @classmethod
    def _ceiling(cls, ceiling: float, info: ValidationInfo) -> float:
        floor = "reconnect_min" if info.field_name == "reconnect_max" else "approval_retry"
        if ceiling < info.data.get(floor, 0.0):
            raise ValueError(f"must be at least iotc.{floor}")
        return ceiling

    @property
    def configured(self) -> bool:
        # Connection strings live in the store, not here: without hub_only nothing says a real hub is meant.
        return self.hub_only or bool(self.id_scope and (self.group_key or self.x509_ca_cert))


@dataclass(frozen=True, slots=True, config=_SECTION)
class CodecSettings:
    directory: Path = Field(
        default=Path("codecs"), description="codec files; each replaces the default mapping of its object"
    )
    ddf_directory: OptionalFile = Field(default=None, description="extra OMA DDF object definitions")
    model_id: str = Field(
        default="",
        description="one model id (DTMI) for every default-codec device, exported with `template export "
        "--fleet`; empty: one model id per object list (docs/codec.md)",
    )

    @field_validator("ddf_directory")
    @classmethod
    def _a_directory(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_dir():
            raise ValueError(f"{path} is not a directory")
        return path

    @field_validator("model_id")
    @classmethod
    def _a_dtmi(cls, model_id: str) -> str:
        from translator.codec.dtdl import is_dtmi  # the codec layer's rule (imported late: settings first)

        if model_id and not is_dtmi(model_id):
            raise ValueError(f"{model_id!r} is not a DTMI (dtmi:segment:segment;version)")
        return model_id


@dataclass(frozen=True, slots=True, config=_SECTION)
class StoreSettings:
    path: OptionalFile = Field(
        default=None, description="the SQLite store; default: <state_dir>/translator.db"
    )
    outbox_limit: int = Field(
        default=100_000, ge=1, description="telemetry messages held in the outbox, in all"
    )
    outbox_device_limit: int = Field(default=10_000, ge=1, description="telemetry messages held per device")
    # Several translators share one Redis store; run it with appendonly yes, appendfsync always.
    redis_url: str = Field(
        default="",
        pattern=r"^(|(redis|rediss|unix)://.+)$",
        description="a shared Redis (redis://host:port/db, rediss://, unix://) instead of the SQLite file "
        "(docs/cluster.md)",
    )
    redis_prefix: str = Field(
        default="iotct:",
        min_length=1,
        description="every Redis key under it: deployments can share one Redis",
    )
    node_id: str = Field(
        default="",
        description="with redis_url: this translator's name among those sharing Redis "
        "(default: host-pid-random)",
    )
    heartbeat_ttl: float = Field(
        default=10.0,
        gt=0,
        description="with redis_url: seconds without this node's heartbeat before others take its devices",
    )
    redis_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="with redis_url: seconds a Redis command or connect may take before it fails (a store "
        "error: 5.03 to the device, nothing acknowledged) instead of hanging",
    )


@dataclass(frozen=True, slots=True, config=_SECTION)
class OperationsSettings:
    host: str = Field(default="127.0.0.1", min_length=1, description="address of /metrics and /healthz")
    port: Port = Field(default=9100, description="/metrics (Prometheus) and /healthz; 0 picks a free port")


@dataclass(frozen=True, slots=True, config=_SECTION)
class HttpSettings:
    """The HTTP ingest endpoint, a drop-in for IoT Central's Device Bridge v1 (translator/http/). Every
    request must carry the key (`?code=` or `x-functions-key`, as the v1 bridge's Azure Function asked); it
    comes from the file or the environment (IOTC_TRANSLATOR_HTTP_KEY), never from a command-line flag,
    where any local user could read it."""

    enabled: bool = Field(default=False, description="serve the Device Bridge v1 drop-in (README: Migrating)")
    host: str = Field(
        default="127.0.0.1", min_length=1, description="its address (plain HTTP: put TLS in front)"
    )
    port: Port = Field(default=8090, description="its TCP port; 0 picks a free one")
    key: str = Field(default="", repr=False, description="the key requests carry (?code= or x-functions-key)")
    key_file: OptionalFile = Field(
        default=None,
        validate_default=True,
        description="a file whose first line is the key (wins over key); key or key_file when enabled",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        description="a request whose data is not safe by then is answered 503 + Retry-After",
    )
    transforms: OptionalFile = Field(
        default=None,
        description="ingress transforms of every request's measurements ([[computed]], [[enrichment]], "
        "[transform]: docs/codec.md)",
    )

    @field_validator("key_file")
    @classmethod
    def _key_given(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path} is not a file")
        if info.data.get("enabled") and path is None and not info.data.get("key"):
            raise ValueError("http.enabled needs a key: key_file, or key (IOTC_TRANSLATOR_HTTP_KEY)")
        return path

    def secret(self) -> str:
        """The key requests must carry; '' when none is set."""
        if self.key_file is not None:
            lines = self.key_file.read_text().splitlines()
            return lines[0].strip() if lines else ""
        return self.key


@dataclass(frozen=True, slots=True, config=_SECTION)
class EmulatorSettings:
    """The embedded IoT Central emulator, started when no IoT Central is configured."""

    host: str = Field(default="127.0.0.1", min_length=1, description="address of the embedded emulator")
    mqtt_port: Port = Field(default=8883, description="its DPS and IoT Hub MQTT (TLS) port")
    http_port: Port = Field(default=8080, description="its REST API port")
    https_port: Port = Field(default=8443, description="its hub's HTTPS device API port (ephemeral devices)")


def _upper(raw: object) -> object:
    return raw.upper() if isinstance(raw, str) else raw


@dataclass(frozen=True, slots=True, config=_SECTION)
class Settings:
    state_dir: Path = Field(
        default=Path("state"),
        description="store (translator.db), minted certificates, the emulator's state: 0700, files with "
        "keys 0600 from creation (looser ones are tightened)",
    )
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR"
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description='"json": one JSON object per line (time, level, logger, message, device_id) for log '
        "pipelines",
    )
    log_sql: bool = Field(
        default=False, description="true: DEBUG also logs SQL with its parameters (device keys, payloads)"
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto",
        description='"auto": uvloop when installed (the default on Linux); "uvloop" or "asyncio"',
    )
    coap: CoapSettings = Field(default_factory=CoapSettings)
    iotc: IotcSettings = Field(default_factory=IotcSettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    operations: OperationsSettings = Field(default_factory=OperationsSettings)
    emulator: EmulatorSettings = Field(default_factory=EmulatorSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    ephemeral: EphemeralSection = Field(default_factory=EphemeralSection)
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="translator processes sharing the CoAP ports (SO_REUSEPORT) under one supervisor; more "
        "than 1 needs store.redis_url (docs/cluster.md)",
    )

    @field_validator("workers")
    @classmethod
    def _shared_store(cls, workers: int, info: ValidationInfo) -> int:
        store = info.data.get("store")
        if workers > 1 and isinstance(store, StoreSettings) and not store.redis_url:
            raise ValueError(
                "more than one worker needs store.redis_url: workers share the store as cluster nodes do "
                "(SQLite is one process's file; docs/cluster.md)"
            )
        return workers

    @field_validator("event_loop")
    @classmethod
    def _installed(cls, loop: str) -> str:
        if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError("uvloop is not installed (pip install uvloop, or use asyncio)")
        return loop

    @property
    def store_path(self) -> Path:
        return self.store.path or self.state_dir / "translator.db"


_FLAGS = "flags"
SECTIONS = ("coap", "iotc", "codec", "store", "operations", "emulator", "http", "gateway", "ephemeral")


def _unknown_variables(environ: Mapping[str, str]) -> None:
    top = set(fields_of(Settings)) - set(SECTIONS)
    for key in environ:
        if not key.startswith(ENV_PREFIX) or key.startswith(_NOT_SETTINGS):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        section, _, rest = name.partition("_")
        if name not in top and not (section in SECTIONS and rest):
            raise SettingsError(f"environment {key}: no such setting")


def _read_file(file: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(file.read_text())
    except OSError as error:
        raise SettingsError(f"{file}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{file}: not valid TOML: {error}") from None
    return _underscored(document)


def _underscored(document: Mapping[str, Any]) -> dict[str, Any]:
    # `receive-buffer` and `receive_buffer` both name coap.receive_buffer in a file.
    return {
        key.replace("-", "_"): _underscored(value) if isinstance(value, Mapping) else value
        for key, value in document.items()
    }


def _nested(overrides: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, name = dotted.partition(".")
        if name:
            nested.setdefault(section, {})[name] = value
        else:
            nested[section] = value
    return nested


def _merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(low)
    for key, value in high.items():
        below = merged.get(key)
        merged[key] = (
            _merge(below, value) if isinstance(below, Mapping) and isinstance(value, Mapping) else value
        )
    return merged


def _holds(layer: Mapping[str, Any], location: tuple[str, ...]) -> bool:
    current: Any = layer
    for key in location:
        if not isinstance(current, Mapping) or key not in current:
            return False
        current = current[key]
    return True


def _describe(error: ValidationError, layers: list[tuple[str, Mapping[str, Any]]]) -> str:
    """The first error, named by its dotted field and blamed on the layer (highest first) that gave it."""
    first = error.errors()[0]
    location = tuple(str(part) for part in first["loc"])
    dotted = ".".join(location) or "settings"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        section = location[0] if len(location) > 1 else None
        known = fields_of(Settings) if section is None else _section_fields(section)
        message = f"unknown setting (known: {', '.join(sorted(known))})"
    got = f"got {first['input']!r}"
    for source, layer in layers:
        if not _holds(layer, location):
            continue
        if source == _FLAGS:
            return f"{dotted}: {message} ({got} from the command line)"
        if source == ENV_PREFIX:
            return f"{dotted}: {message} ({got} from {ENV_PREFIX}{'_'.join(location).upper()})"
        return f"{source}: {dotted}: {message} ({got})"
    return f"{dotted}: {message}"


def _section_fields(section: str) -> dict[str, Any]:
    return dict(fields_of(fields_of(Settings)[section].annotation))


def load_settings(
    *,
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults ← TOML file ← environment ← `overrides` (dotted names from flags: {"coap.port": 5684}).

    The layers are merged here rather than in `BaseSettings.__init__` so that an error can say which layer
    gave the bad value (the file, a variable, a flag); the environment is read by pydantic-settings' own
    source, with its nesting rules.
    """
    # pydantic-settings imports asyncio (and so ssl, socket) at module level: this module stays importable
    # without them (tests/test_layers.py), the loader pulls them in when it runs.
    from translator.settings_environment import environment_layer

    environment = os.environ if environ is None else environ
    _unknown_variables(environment)
    layers: list[tuple[str, Mapping[str, Any]]] = [
        (_FLAGS, _nested(overrides or {})),
        (ENV_PREFIX, environment_layer(environment)),
    ]
    if file is not None:
        layers.append((str(file), _read_file(file)))
    merged: dict[str, Any] = {}
    for _, layer in reversed(layers):
        merged = _merge(merged, layer)
    try:
        return Settings(**merged)
    except ValidationError as error:
        raise SettingsError(_describe(error, layers)) from None
