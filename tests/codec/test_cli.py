"""`iotc-translator template export` and `codec check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.codec.conftest import REPO
from tests.codec.dtdl_rules import problems
from translator.cli import build_parser, main


def test_export_codec_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "export", "--codec", str(REPO / "codecs" / "3303-temperature.toml")]) == 0
    template = json.loads(capsys.readouterr().out)
    assert template[0]["@id"] == "dtmi:iotcTranslator:codecs:temperatureSensor;1"
    assert problems(template) == []


def test_export_default_for_objects_to_file(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    assert (
        main(["template", "export", "--objects", '</>;rt="oma.lwm2m",</3/0>,</3303/0>', "-o", str(out)]) == 0
    )
    template = json.loads(out.read_text())
    assert [c["name"] for c in template[0]["contents"]] == ["device", "temperature_0"]
    assert problems(template) == []


def test_export_with_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "export", "--objects", "</3303/0>", "--overrides", str(REPO / "codecs")]) == 0
    template = json.loads(capsys.readouterr().out)
    assert "temperature" in [c["name"] for c in template[1]["contents"]]


def test_bad_codec_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[template]\nid = "nope"\n')
    assert main(["template", "export", "--codec", str(bad)]) == 1
    assert f"{bad}:2: template.id:" in capsys.readouterr().err


def test_objects_without_instances(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "export", "--objects", "</3>"]) == 2
    assert "no object instances" in capsys.readouterr().err


def test_emulator_passthrough_is_kept() -> None:
    parser = build_parser()
    assert parser.parse_args(["template", "export", "--objects", "</3/0>"]).command == "template"
    with pytest.raises(SystemExit):
        parser.parse_args(["template", "export"])  # a source is required


def test_codec_check_reports_each_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[template]\nid = "dtmi:x:y;1"\n[[telemetry]]\npath = "/3303/0/5700"\nname = "t"\n'
        '[[computed]]\nname = "f"\nexpression = "tt * 2"\n'
    )
    good = REPO / "docs" / "examples" / "climate.toml"
    assert main(["codec", "check", str(good), str(bad)]) == 1
    out, err = capsys.readouterr()
    assert f"ok: {good}: dtmi:iotcTranslator:examples:climate;1, 8 capabilities (3 computed" in out
    assert err == f"error: {bad}:8: computed[0].expression: unknown name 'tt' (known here: t)\n"
    assert main(["codec", "check", str(good)]) == 0


def test_codec_check_takes_a_transform_file_of_the_http_face(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "ttn.toml"
    file.write_text('[[computed]]\nname = "tempF"\nexpression = "temp * 1.8 + 32"\n')
    assert main(["codec", "check", str(file)]) == 0
    assert capsys.readouterr().out == f"ok: {file}: transforms for the HTTP face (1 computed)\n"
    file.write_text('[[computed]]\nname = "tempF"\nexpression = "kelvin(temp)"\n')
    assert main(["codec", "check", str(file)]) == 1
    assert f"error: {file}:3: computed[0].expression: unknown function 'kelvin'" in capsys.readouterr().err
