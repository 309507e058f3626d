"""The catalog's model ids: one per object list (warned about as a fleet nears IoT Central's 1,000 device
templates per application), or one fleet model id (`codec.model_id`).
https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits#device-modeling"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path as FsPath

import pytest

from tests.conftest import REPO
from translator.bridge.codecs import TEMPLATE_WARNING_STEP, CodecCatalog
from translator.lwm2m import ObjectRegistry, Path

FLEET = "dtmi:example:fleet;1"


def test_one_template_per_object_list_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    catalog = CodecCatalog(None, ObjectRegistry.builtin())
    with caplog.at_level(logging.WARNING, logger="translator.bridge.codecs"):
        for i in range(TEMPLATE_WARNING_STEP - 1):
            catalog.for_objects((Path(3, 0), Path(3303, i)), {})
        assert not [r for r in caplog.records if "distinct device templates" in r.getMessage()]
        catalog.for_objects((Path(3, 0), Path(3303, TEMPLATE_WARNING_STEP)), {})
        catalog.for_objects((Path(3, 0), Path(3303, 0)), {})  # a template already counted: no new warning
    [warning] = [r.getMessage() for r in caplog.records if "distinct device templates" in r.getMessage()]
    assert warning.startswith(f"{TEMPLATE_WARNING_STEP} distinct device templates")
    assert "at most 1000" in warning and "codec.model_id" in warning


def test_a_fleet_model_id_is_announced_by_every_object_list(caplog: pytest.LogCaptureFixture) -> None:
    catalog = CodecCatalog(None, ObjectRegistry.builtin(), model_id=FLEET)
    with caplog.at_level(logging.WARNING, logger="translator.bridge.codecs"):
        codecs = [
            catalog.for_objects((Path(3, 0), Path(3303, i)), {}) for i in range(TEMPLATE_WARNING_STEP + 1)
        ]
    assert {c.model_id for c in codecs} == {FLEET}
    assert not [r for r in caplog.records if "distinct device templates" in r.getMessage()]


def test_an_override_with_transforms_is_warned_about(
    tmp_path: FsPath, caplog: pytest.LogCaptureFixture
) -> None:
    """Its transforms apply to devices imported with the file; the default codec takes only its mapping."""
    shutil.copy(REPO / "docs" / "examples" / "climate.toml", tmp_path)
    shutil.copy(REPO / "codecs" / "3303-temperature.toml", tmp_path)
    with caplog.at_level(logging.WARNING, logger="translator.bridge.codecs"):
        catalog = CodecCatalog(tmp_path, ObjectRegistry.builtin())
    [warning] = [r.getMessage() for r in caplog.records if "ingress transforms" in r.getMessage()]
    assert "climate.toml" in warning and "not to the default codec's objects" in warning
    assert len(catalog.overrides) == 2
