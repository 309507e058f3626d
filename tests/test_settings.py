"""The settings loader: defaults ← TOML ← environment ← flags, and every bad value named at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from translator.settings import SettingsError, load_settings


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
        ({"IOTC_TRANSLATOR_COAP_DTLS_IDLE_TIMEOUT": "0"}, "coap.dtls_handshake_timeout"),
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
