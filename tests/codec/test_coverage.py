"""What a codec does not translate is said once: by `template export` on stderr, and (tests/e2e) in one INFO
line per registration."""

from __future__ import annotations

import json

import pytest

from tests.codec.conftest import REPO
from translator.cli import main
from translator.codec import default_codec, load_codec
from translator.codec.coverage import untranslated
from translator.lwm2m import ObjectRegistry, Path


def test_objects_without_a_model_and_dropped_resources(registry: ObjectRegistry) -> None:
    instances = [Path(3, 0), Path(10, 0), Path(33605, 0), Path(3303, 0)]
    codec = default_codec(instances, registry)
    missing = untranslated(codec, instances, registry)
    assert missing.unknown_objects == (10, 33605)
    assert "/10" in missing.describe() and "/33605" in missing.describe()
    device = load_codec(REPO / "codecs" / "3-device.toml", registry)
    dropped = dict(untranslated(device, [Path(3, 0)], registry).dropped)
    assert dropped[3] and all(device.entry_for(Path(3, 0, r)) is None for r in dropped[3])
    assert not untranslated(default_codec([Path(3303, 0)], registry), [Path(3303, 0)], registry)


def test_template_export_says_what_is_not_translated(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "export", "--objects", "</3303/0>,</10/0>,</33605/0>"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)  # the template itself, untouched
    assert "not translated" in captured.err and "/10" in captured.err and "/33605" in captured.err
