"""The `[operations]` settings section: where /metrics and /healthz listen."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from translator.settings_types import SECTION, Port


@dataclass(frozen=True, slots=True, config=SECTION)
class OperationsSettings:
    host: str = Field(default="127.0.0.1", min_length=1, description="address of /metrics and /healthz")
    port: Port = Field(default=9100, description="/metrics (Prometheus) and /healthz; 0 picks a free port")
