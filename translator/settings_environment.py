"""The environment layer of the settings: pydantic-settings' own environment source, with its nesting rules
(`IOTC_TRANSLATOR_COAP_RECEIVE_BUFFER` → coap.receive_buffer), reading a given mapping (os.environ at
start-up, a dict in tests). Kept apart from translator/settings.py because pydantic-settings loads asyncio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import create_model
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from translator.settings import ENV_PREFIX, Settings, fields_of


class _Naming(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,  # one level: COAP_RECEIVE_BUFFER is coap + receive_buffer
        enable_decoding=False,  # a list is "a, b" (the fields split it), not JSON
    )


# The settings' fields under the environment's naming rules: never built, only read by the source.
_Described = create_model(
    "_Described",
    __base__=_Naming,
    **{name: (info.annotation, info) for name, info in fields_of(Settings).items()},  # type: ignore[call-overload]
)


class _Given(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping. Its constructor reads os.environ into
    `env_vars`, the public attribute every lookup then reads; this replaces it with the given variables,
    named case-insensitively as the source does (case_sensitive is off). No private method is overridden.
    (`settings_customise_sources` only chooses among sources when a BaseSettings is built; load_settings
    merges the layers itself, to blame the one that gave a bad value, and calls this source directly.)"""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(_Described)
        assert not self.case_sensitive
        self.env_vars = {name.lower(): value for name, value in environ.items()}


def environment_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """The nested values the environment gives ({"coap": {"port": "5684"}}), not yet validated."""
    return _Given(environ)()
