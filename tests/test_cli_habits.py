"""The command line's habits: --version, errors that blame the right thing, secrets kept out of argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from translator.cli import build_parser, main
from translator.settings import Settings

CSV = "deviceId,endpoint\nd1,d1\n"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("iotc-translator ")


def test_a_bad_flag_of_devices_import_is_a_configuration_error_not_a_csv_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(CSV)
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["devices", "import", str(csv_file), "--coap-port", "70000", *state]) == 2
    error = capsys.readouterr().err
    assert "configuration error: coap.port" in error
    assert str(csv_file) not in error


def test_the_group_key_from_a_file_and_a_warning_for_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: list[Settings] = []
    monkeypatch.setattr("translator.serve.run", captured.append)
    key = "ZGVtby1ncm91cC1rZXk="
    key_file = tmp_path / "group.key"
    key_file.write_text(key + "\n")
    common = ["serve", "--state-dir", str(tmp_path / "state"), "--id-scope", "0ne00ABC"]
    assert main([*common, "--group-key-file", str(key_file)]) == 0
    assert captured[-1].iotc.group_key == key
    assert "warning" not in capsys.readouterr().err
    assert main([*common, "--group-key", key]) == 0
    assert captured[-1].iotc.group_key == key
    assert "--group-key puts the key in the process list" in capsys.readouterr().err


SUBCOMMANDS = (
    ["serve"],
    ["simulate"],
    ["devices", "import"],
    ["devices", "remove-psk"],
    ["template", "export"],
    ["config", "reference"],
)


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_each_subcommand_help_ends_with_examples_of_itself(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(capsys, *command)
    examples = text.split("examples:\n", 1)[1].splitlines()
    assert examples and all(f"iotc-translator {' '.join(command)}" in line for line in examples if line)


def test_serve_help_shows_its_flags_with_the_settings_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(_help(capsys, "serve").split())  # argparse wraps lines
    assert (
        "--coap-port COAP_PORT LwM2M UDP port (setting coap.port, IOTC_TRANSLATOR_COAP_PORT; default: 5683)"
        in text
    )
    assert "default: 9100" in text and "default: INFO" in text
    assert "--devices" not in text and "--psk-key" not in text  # simulate's, not serve's
    assert "default: None" not in text


def test_simulate_help_shows_its_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(_help(capsys, "simulate").split())
    assert "how many devices (default: 1)" in text
    assert "(default: coap://127.0.0.1:5683)" in text
    assert "--coap-port" not in text and "default: None" not in text and "default: False" not in text


LEAVES = (*SUBCOMMANDS, ["codec", "check", "x.toml"])


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_each_subcommand_names_the_function_that_runs_it(command: list[str]) -> None:
    # main dispatches on the parser's `run` default; a subcommand module that forgot it would print the
    # top-level help and exit 2 instead of running.
    required = {"devices import": ["x.csv"], "devices remove-psk": ["ep"], "template export": ["--fleet"]}
    args = build_parser().parse_args([*command, *required.get(" ".join(command), [])])
    assert callable(args.run)
