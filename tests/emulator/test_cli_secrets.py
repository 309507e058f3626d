"""The emulator's secrets (group keys, API token) from a file or the environment; a flag works but warns."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.cli import build_parser, secrets_of


def test_secrets_from_files_without_a_warning(tmp_path: Path) -> None:
    token, key = tmp_path / "token", tmp_path / "primary.key"
    token.write_text("s3cret-token\n")
    key.write_text("ZGVtby1ncm91cC1rZXk=\n")
    args = build_parser("emulator").parse_args(
        ["--api-token-file", str(token), "--group-primary-key-file", str(key)]
    )
    warnings: list[str] = []
    secrets = secrets_of(args, warnings.append)
    assert secrets == {
        "api_token": "s3cret-token",
        "group_primary_key": "ZGVtby1ncm91cC1rZXk=",
        "group_secondary_key": None,
    }
    assert warnings == []


def test_a_secret_given_as_a_flag_is_taken_with_a_warning() -> None:
    args = build_parser("emulator").parse_args(["--api-token", "s3cret-token"])
    warnings: list[str] = []
    assert secrets_of(args, warnings.append)["api_token"] == "s3cret-token"
    assert len(warnings) == 1
    assert "--api-token puts the secret in the process list" in warnings[0]
    assert "IOTC_EMULATOR_API_TOKEN" in warnings[0]


def test_a_secret_flag_and_its_file_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        build_parser("emulator").parse_args(["--api-token", "x", "--api-token-file", str(tmp_path)])


def test_help_names_the_file_and_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser("emulator").parse_args(["--help"])
    out = capsys.readouterr().out
    assert "IOTC_EMULATOR_API_TOKEN" in out and "--group-secondary-key-file" in out
    assert "examples:" in out
