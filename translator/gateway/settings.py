"""`[gateway]`: whether the translator provisions itself as an IoT Central gateway device, and as which."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator
from pydantic.dataclasses import dataclass

DEFAULT_MODEL_ID = "dtmi:iotcTranslator:gateway;1"


@dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid", defer_build=True))
class GatewaySettings:
    enabled: bool = Field(
        default=False,
        description="provision the translator as a gateway device and every LwM2M device as downstream of "
        "it (README: Patterns)",
    )
    device_id: str = Field(
        default="iotc-translator",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}$",
        description="the gateway's device id in IoT Central (with several translators: one each)",
    )
    model_id: str = Field(
        default=DEFAULT_MODEL_ID,
        description="its model id; `template export --gateway` prints the template to publish under it",
    )
    telemetry_interval: float = Field(
        default=60.0, gt=0, description="seconds between the gateway's health telemetry messages"
    )

    @field_validator("model_id")
    @classmethod
    def _a_dtmi(cls, model_id: str) -> str:
        from translator.codec.dtdl import is_dtmi

        if not is_dtmi(model_id):
            raise ValueError(f"{model_id!r} is not a DTMI (dtmi:segment:segment;version)")
        return model_id
