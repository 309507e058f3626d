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

import importlib.util
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from translator.coap.settings import CoapSettings
from translator.gateway.settings import GatewaySettings
from translator.settings_codec import CodecSettings
from translator.settings_ephemeral import EphemeralSection
from translator.settings_http import HttpSettings
from translator.settings_iotc import MAX_COMMAND_DEADLINE, MAX_KEEP_ALIVE, EmulatorSettings, IotcSettings
from translator.settings_operations import OperationsSettings
from translator.settings_store import StoreSettings
from translator.settings_types import SECTION

# Each section is declared in its own module (settings_<section>.py, or its face's settings.py); this one
# holds them together and loads them, and every name is importable from here.
__all__ = [
    "ENV_PREFIX",
    "MAX_COMMAND_DEADLINE",
    "MAX_KEEP_ALIVE",
    "SECTIONS",
    "CoapSettings",
    "CodecSettings",
    "EmulatorSettings",
    "EphemeralSection",
    "GatewaySettings",
    "HttpSettings",
    "IotcSettings",
    "OperationsSettings",
    "Settings",
    "SettingsError",
    "StoreSettings",
    "fields_of",
    "load_settings",
]

ENV_PREFIX = "IOTC_TRANSLATOR_"
# The test suite's own variables (IOTC_TRANSLATOR_TEST_SHARED) share the prefix but are no settings.
_NOT_SETTINGS = ENV_PREFIX + "TEST_"


def fields_of(kind: Any) -> Mapping[str, FieldInfo]:
    """A pydantic dataclass's (or model's) fields, in declaration order; none for anything else."""
    found = getattr(kind, "__pydantic_fields__", None)
    return found if isinstance(found, Mapping) else {}


class SettingsError(ValueError):
    """A setting is invalid; the message starts with its dotted name (or the file it came from)."""


def _upper(raw: object) -> object:
    return raw.upper() if isinstance(raw, str) else raw


@dataclass(frozen=True, slots=True, config=SECTION)
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
