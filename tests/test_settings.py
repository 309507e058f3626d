"""The settings loader: defaults ← TOML ← environment ← flags, and every bad value named at start-up."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from translator.coap.settings import CoapSettings
from translator.settings import SECTIONS, Settings, SettingsError, fields_of, load_settings
from translator.settings_reference import reference, rows


def test_defaults_need_no_file() -> None:
    settings = load_settings(environ={})
    assert settings.event_loop == "auto"
    assert settings.coap.receive_buffer == 4 * 1024 * 1024
    assert settings.coap.port == 5683


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "translator.toml"
    config.write_text('event_loop = "asyncio"\n[coap]\nport = 5700\nreceive_buffer = 1048576\n')
    settings = load_settings(
        file=config,
        environ={"IOTC_TRANSLATOR_COAP_PORT": "5701", "IOTC_TRANSLATOR_COAP_RECEIVE_BUFFER": "0"},
        overrides={"coap.port": 5702},
    )
    assert settings.event_loop == "asyncio"
    assert settings.coap.receive_buffer == 0
    assert settings.coap.port == 5702


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"IOTC_TRANSLATOR_EVENT_LOOP": "trio"}, "event_loop"),
        ({"IOTC_TRANSLATOR_COAP_RECEIVE_BUFFER": "-1"}, "coap.receive_buffer"),
        ({"IOTC_TRANSLATOR_COAP_RECEIVE_BUFFER": "lots"}, "coap.receive_buffer"),
        ({"IOTC_TRANSLATOR_COAP_PORT": "70000"}, "coap.port"),
        ({"IOTC_TRANSLATOR_IOTC_RECONNECT_MIN": "0"}, "iotc.reconnect_min"),
        ({"IOTC_TRANSLATOR_LOG_LEVEL": "LOUD"}, "log_level"),
        ({"IOTC_TRANSLATOR_COAP_DTLS_PORT": "5683"}, "coap.dtls_port"),
        ({"IOTC_TRANSLATOR_COAP_DTLS_PORT": "70000"}, "coap.dtls_port"),
        ({"IOTC_TRANSLATOR_COAP_DTLS_CERTIFICATE": "/etc/hostname"}, "coap.dtls_certificate"),
        ({"IOTC_TRANSLATOR_COAP_DTLS_IDLE_TIMEOUT": "0"}, "coap.dtls_idle_timeout"),
        ({"IOTC_TRANSLATOR_COAP_DTLS_CLIENT_CA": "/etc/hostname"}, "coap.dtls_certificate"),
    ],
)
def test_a_bad_value_names_its_field(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=f"^{named}"):
        load_settings(environ=environ)


def test_a_bad_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    config = tmp_path / "translator.toml"
    config.write_text('[coap]\nreceive_buffer = "big"\n')
    with pytest.raises(SettingsError, match=r"translator\.toml: coap\.receive_buffer"):
        load_settings(file=config, environ={})


def test_dtls_port_from_the_environment() -> None:
    settings = load_settings(environ={"IOTC_TRANSLATOR_COAP_DTLS_PORT": "15684"})
    coap = settings.coap
    assert coap.dtls_port == 15684 and coap.dtls and not coap.insecure_auto_register


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"IOTC_TRANSLATOR_COAP_TICK": "0"}, "coap.tick"),
        ({"IOTC_TRANSLATOR_IOTC_KEEP_ALIVE": "100000"}, "iotc.keep_alive"),
        ({"IOTC_TRANSLATOR_IOTC_KEEP_ALIVE": "-5"}, "iotc.keep_alive"),
        ({"IOTC_TRANSLATOR_IOTC_KEEP_ALIVE": "1178"}, "iotc.keep_alive"),
        ({"IOTC_TRANSLATOR_COAP_REQUEST_TIMEOUT": "-1"}, "coap.request_timeout"),
        ({"IOTC_TRANSLATOR_IOTC_TELEMETRY_TIMEOUT": "-0.5"}, "iotc.telemetry_timeout"),
        ({"IOTC_TRANSLATOR_IOTC_IDLE_TIMEOUT": "-1"}, "iotc.idle_timeout"),
        ({"IOTC_TRANSLATOR_STORE_OUTBOX_LIMIT": "-3"}, "store.outbox_limit"),
        ({"IOTC_TRANSLATOR_COAP_MAX_PAYLOAD": "0"}, "coap.max_payload"),
        ({"IOTC_TRANSLATOR_IOTC_TRANSPORT": "paho"}, "iotc.transport"),
        ({"IOTC_TRANSLATOR_IOTC_RECONNECT_MAX": "0.5"}, "iotc.reconnect_max"),
        ({"IOTC_TRANSLATOR_IOTC_GROUP_KEY": "not base64!"}, "iotc.group_key"),
        ({"IOTC_TRANSLATOR_COAP_BLOCK_TRANSFERS": "0"}, "coap.block_transfers"),
        ({"IOTC_TRANSLATOR_COAP_TYPO": "1"}, "coap.typo"),
    ],
)
def test_every_field_has_bounds(environ: dict[str, str], named: str) -> None:
    # keep_alive 100000 used to be accepted and raise struct.error inside the TLS handshake.
    with pytest.raises(SettingsError, match=f"^{named}: .*from {next(iter(environ))}"):
        load_settings(environ=environ)


def test_an_unknown_variable_is_named_and_test_variables_are_not_settings() -> None:
    with pytest.raises(SettingsError, match="IOTC_TRANSLATOR_LOGLEVEL"):
        load_settings(environ={"IOTC_TRANSLATOR_LOGLEVEL": "DEBUG"})
    load_settings(environ={"IOTC_TRANSLATOR_TEST_SHARED": "/nowhere"})


def test_a_flag_is_blamed_as_a_flag() -> None:
    with pytest.raises(SettingsError, match=r"^coap\.port: .*from the command line"):
        load_settings(environ={}, overrides={"coap.port": 70000})


def test_lists_empty_paths_and_case_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "IOTC_TRANSLATOR_COAP_ALLOW": "a, b",
            "IOTC_TRANSLATOR_IOTC_CA_FILE": "",
            "IOTC_TRANSLATOR_LOG_LEVEL": "debug",
        }
    )
    assert settings.coap.allow == ("a", "b")
    assert settings.iotc.ca_file is None
    assert settings.log_level == "DEBUG"


def test_a_value_built_in_code_is_checked_too_and_reads_no_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="tick"):
        replace(CoapSettings(), tick=0)
    monkeypatch.setenv("IOTC_TRANSLATOR_COAP_PORT", "1234")
    assert Settings().coap.port == 5683


def test_the_readme_reference_is_the_generated_one() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("<!-- settings-reference:start -->\n") + len("<!-- settings-reference:start -->\n")
    table = readme[start : readme.index("<!-- settings-reference:end -->")]
    assert table == reference(Settings), "run `iotc-translator config reference` into the README"


def test_the_reference_lists_every_key_with_its_true_default() -> None:
    table = reference(Settings)
    defaults = Settings()
    keys = [key for key, _ in rows(Settings)]
    for section in SECTIONS:
        for name in fields_of(type(getattr(defaults, section))):
            assert f"{section}.{name}" in keys
    assert "| `coap.max_payload` | `65536` | ≥ 16 |" in table
    assert "| `iotc.keep_alive` | `300` | ≥ 1, ≤ 1177 |" in table
    assert '| `state_dir` | `"state"` |' in table


def test_http_bridge_is_off_by_default_and_needs_a_key_when_on(tmp_path: Path) -> None:
    assert not load_settings(environ={}).http.enabled
    with pytest.raises(SettingsError, match=r"^http\.key_file: http\.enabled needs a key"):
        load_settings(environ={"IOTC_TRANSLATOR_HTTP_ENABLED": "true"})
    settings = load_settings(
        environ={"IOTC_TRANSLATOR_HTTP_ENABLED": "true", "IOTC_TRANSLATOR_HTTP_KEY": "from-env"}
    )
    assert settings.http.secret() == "from-env"
    assert "from-env" not in repr(settings)  # settings may be logged; the key is not in them
    key_file = tmp_path / "http.key"
    key_file.write_text("from-file\n")
    config = tmp_path / "translator.toml"
    config.write_text(f'[http]\nenabled = true\nport = 8091\nkey_file = "{key_file}"\n')
    settings = load_settings(file=config, environ={})
    assert (settings.http.port, settings.http.secret()) == (8091, "from-file")
    with pytest.raises(SettingsError, match=r"^http\.key_file: .* is not a file"):
        load_settings(environ={"IOTC_TRANSLATOR_HTTP_KEY_FILE": str(tmp_path / "absent")})
