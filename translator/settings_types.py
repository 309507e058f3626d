"""What every settings section shares: its pydantic configuration and the field types of more than one
section (translator/settings.py and its settings_<section>.py modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field


def _empty_is_none(raw: object) -> object:
    # `IOTC_TRANSLATOR_IOTC_CA_FILE=` unsets an optional path, as an absent key does.
    return None if raw == "" else raw


OptionalFile = Annotated[Path | None, BeforeValidator(_empty_is_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_empty_is_none)]
Port = Annotated[int, Field(ge=0, le=65535)]
RemotePort = Annotated[int, Field(ge=1, le=65535)]
# Validators are built at first use, not at import: building one loads pydantic's plugin look-up
# (importlib.metadata → email → socket), which importing a pure module must not (tests/test_layers.py).
SECTION = ConfigDict(extra="forbid", defer_build=True)
