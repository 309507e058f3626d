"""The `[http]` settings section: the HTTP face (the Device Bridge v1 drop-in and webhook adapters)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass

from translator.settings_types import SECTION, OptionalFile, Port


@dataclass(frozen=True, slots=True, config=SECTION)
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
