"""The `[codec]` settings section: where codec files and extra object definitions are, and the fleet's model
id."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from translator.settings_types import SECTION, OptionalFile


@dataclass(frozen=True, slots=True, config=SECTION)
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
