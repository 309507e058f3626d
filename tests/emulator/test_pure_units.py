"""Pure modules of the emulator: SAS checks, twin state, topics and property bags, configuration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from emulator.config import ConfigError, EmulatorConfig, load_config
from emulator.sas import SasError, derive_device_key, parse_sas, verify_sas
from emulator.state import Application, C2DMessage, Device, Twin, merge_patch
from emulator.topics import encode_property_bag, parse_property_bag, topic_matches, topic_query
from tests.conftest import TEST_GROUP_KEY, TEST_SECONDARY_KEY
from tests.emulator.clients import dps_token, hub_token, sas_token

# Computed with `openssl dgst -sha256 -mac HMAC` from TEST_GROUP_KEY and "thermostat-01".
THERMOSTAT_KEY = "GbjMojupLC5SH/E0dBUi+tHn0FxU4xCn1ADmLbzBlas="
# ... and the signature of "0neTEST0001%2Fregistrations%2Fthermostat-01\n2000000000" with that key.
THERMOSTAT_SIG = "XHUIOta9Zq7+dc/t+rYQGP/1TujOETtEPfcZ3fqVGP4="
RESOURCE = "0neTEST0001/registrations/thermostat-01"


# -- sas ------------------------------------------------------------------------------------------------


def test_derive_device_key_matches_openssl() -> None:
    assert derive_device_key(TEST_GROUP_KEY, "thermostat-01") == THERMOSTAT_KEY


def test_test_side_token_generator_matches_openssl() -> None:
    token = sas_token(RESOURCE, THERMOSTAT_KEY, expiry=2_000_000_000, policy="registration")
    assert token == (
        "SharedAccessSignature sr=0neTEST0001%2Fregistrations%2Fthermostat-01"
        "&sig=XHUIOta9Zq7%2Bdc%2Ft%2BrYQGP%2F1TujOETtEPfcZ3fqVGP4%3D&se=2000000000&skn=registration"
    )


def test_parse_sas_decodes_fields() -> None:
    token = parse_sas(sas_token(RESOURCE, THERMOSTAT_KEY, expiry=2_000_000_000, policy="registration"))
    assert token.resource_uri == RESOURCE
    assert token.signature == THERMOSTAT_SIG
    assert token.expiry == 2_000_000_000
    assert token.key_name == "registration"


def _verify(token: str, *, resource: str = RESOURCE, keys: list[str] | None = None, now: float = 0) -> None:
    verify_sas(
        parse_sas(token),
        expected_resource=resource,
        keys=keys or [THERMOSTAT_KEY],
        now=now or time.time(),
        expected_key_name="registration",
    )


def test_verify_good_token() -> None:
    _verify(dps_token("0neTEST0001", "thermostat-01", THERMOSTAT_KEY))
    # Any one of the keys (primary or secondary) may have signed it.
    other = derive_device_key(TEST_SECONDARY_KEY, "thermostat-01")
    _verify(dps_token("0neTEST0001", "thermostat-01", other), keys=[THERMOSTAT_KEY, other])


def test_verify_hub_token_without_key_name() -> None:
    token = hub_token("hub-a.azure-devices.net", "thermostat-01", THERMOSTAT_KEY)
    verify_sas(
        parse_sas(token),
        expected_resource="hub-a.azure-devices.net/devices/thermostat-01",
        keys=[THERMOSTAT_KEY],
        now=time.time(),
    )


def test_verify_expired() -> None:
    token = sas_token(RESOURCE, THERMOSTAT_KEY, expiry=int(time.time()) - 1, policy="registration")
    with pytest.raises(SasError, match="expired"):
        _verify(token)


def test_verify_wrong_resource() -> None:
    token = dps_token("0neTEST0001", "thermostat-02", THERMOSTAT_KEY)
    with pytest.raises(SasError, match="resource"):
        _verify(token)


def test_verify_wrong_key() -> None:
    token = dps_token("0neTEST0001", "thermostat-01", derive_device_key(TEST_GROUP_KEY, "someone-else"))
    with pytest.raises(SasError, match="signature"):
        _verify(token)


def test_verify_wrong_key_name() -> None:
    token = sas_token(RESOURCE, THERMOSTAT_KEY, policy="iothubowner")
    with pytest.raises(SasError, match="key name"):
        _verify(token)


def test_tampered_expiry_fails_the_signature() -> None:
    token = sas_token(RESOURCE, THERMOSTAT_KEY, expiry=2_000_000_000, policy="registration")
    with pytest.raises(SasError, match="signature"):
        _verify(token.replace("se=2000000000", "se=2000000001"))


@pytest.mark.parametrize(
    "token",
    [
        "sr=a&sig=b&se=1",  # no prefix
        "SharedAccessSignature sig=abc&se=2000000000",  # no sr
        "SharedAccessSignature sr=a&se=2000000000",  # no sig
        "SharedAccessSignature sr=a&sig=abc",  # no se
        "SharedAccessSignature sr=a&sig=abc&se=soon",  # se not a number
        "SharedAccessSignature sr=a&sr=b&sig=abc&se=2000000000",  # a field twice
        "",
    ],
)
def test_parse_malformed(token: str) -> None:
    with pytest.raises(SasError):
        parse_sas(token)


def test_signature_not_base64() -> None:
    with pytest.raises(SasError, match="base64"):
        _verify(f"SharedAccessSignature sr={RESOURCE}&sig=%21%21%21&se=2000000000")


# -- state ----------------------------------------------------------------------------------------------


def test_merge_patch_rfc7386() -> None:
    target: dict[str, Any] = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "f": "x"}
    patch: dict[str, Any] = {"a": None, "b": {"c": None, "g": {"h": None, "i": 4}}, "e": [3], "new": {"k": 1}}
    assert merge_patch(target, patch) == {
        "b": {"d": 3, "g": {"i": 4}},
        "e": [3],
        "f": "x",
        "new": {"k": 1},
    }
    assert target == {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "f": "x"}  # not mutated
    assert merge_patch({"a": {"b": 1}}, {"a": 5}) == {"a": 5}  # a value replaces an object
    assert merge_patch({"a": 5}, {"a": {"b": 1}}) == {"a": {"b": 1}}  # and an object a value
    assert merge_patch({"a": 1}, {"missing": None}) == {"a": 1}


def test_twin_versions() -> None:
    twin = Twin()
    assert twin.document() == {"desired": {"$version": 1}, "reported": {"$version": 1}}
    assert twin.patch_reported({"temp": 20, "comp": {"__t": "c", "x": 1}}) == 2
    assert twin.patch_reported({"temp": None, "comp": {"y": 2}}) == 3
    sent = twin.patch_desired({"target": 22})
    assert sent == {"target": 22, "$version": 2}
    assert twin.document() == {
        "desired": {"target": 22, "$version": 2},
        "reported": {"comp": {"__t": "c", "x": 1, "y": 2}, "$version": 3},
    }


def test_application_json_round_trip() -> None:
    device = Device("dev-1", display_name="Dev", enabled=False, provisioned=True, model_id="dtmi:x;1")
    device.assigned_hub = "hub-a.azure-devices.net"
    device.twin.patch_reported({"a": {"b": [1, 2]}})
    device.twin.patch_desired({"t": 3})
    device.telemetry["c/temp"] = {"timestamp": "2026-01-01T00:00:00.000Z", "value": 1.5}
    device.c2d.append(C2DMessage("m1", '{"x": 1}', {"method-name": "go"}, 1e10, "2026-01-01T00:00:00Z"))
    application = Application("0neABC", "cHJpbWFyeQ==", "c2Vjb25kYXJ5", {"dev-1": device, "d2": Device("d2")})
    restored = Application.from_json(application.to_json())
    assert restored == application
    assert restored.devices["dev-1"].twin.document() == device.twin.document()


# -- topics ---------------------------------------------------------------------------------------------


def test_property_bag_decoding() -> None:
    bag = "%24.sub=thermostat1&%24.ct=application%2Fjson&%24.ce=utf-8&sensor%20kind=a%26b%3Dc&flag"
    assert parse_property_bag(bag) == {
        "$.sub": "thermostat1",
        "$.ct": "application/json",
        "$.ce": "utf-8",
        "sensor kind": "a&b=c",
        "flag": "",
    }
    assert parse_property_bag("$.sub=c1&iothub-creation-time-utc=2026-01-01T00%3A00%3A00Z") == {
        "$.sub": "c1",
        "iothub-creation-time-utc": "2026-01-01T00:00:00Z",
    }
    assert parse_property_bag("") == {}


def test_property_bag_round_trip() -> None:
    properties = {"$.mid": "1", "method-name": "a*b", "x y": "p&q=r/s"}
    encoded = encode_property_bag(properties)
    assert "/" not in encoded
    assert parse_property_bag(encoded) == properties


def test_topic_query() -> None:
    assert topic_query("$dps/registrations/res/202/?$rid=1&retry-after=3") == {
        "$rid": "1",
        "retry-after": "3",
    }
    assert topic_query("$iothub/twin/GET/") == {}


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("$iothub/twin/res/#", "$iothub/twin/res/200/?$rid=1", True),
        ("$iothub/twin/res/#", "$iothub/twin/res", True),  # '#' includes the parent level
        ("$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/?$version=2", False),
        ("$iothub/methods/POST/#", "$iothub/methods/POST/reboot/?$rid=a", True),
        ("devices/d1/messages/devicebound/#", "devices/d1/messages/devicebound/%24.mid=1", True),
        ("devices/d1/messages/devicebound/#", "devices/d2/messages/devicebound/%24.mid=1", False),
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/+", "a/b/c", False),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
        ("a/b/c", "a/b", False),
        ("+/+", "/x", True),
    ],
)
def test_topic_matches(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches


# -- config ---------------------------------------------------------------------------------------------


def test_defaults() -> None:
    config = load_config(environ={})
    assert config == EmulatorConfig()
    assert config.mqtt_port == 8883
    assert config.max_subscriptions == 5
    assert config.max_message_bytes == 256 * 1024


def test_precedence_file_env_override(tmp_path: Path) -> None:
    file = tmp_path / "emulator.toml"
    file.write_text(
        '[emulator]\nmqtt_port = 1001\nhttp_port = 2001\nhost = "0.0.0.0"\nhub_names = ["h1", "h2"]\n'
    )
    environ = {"IOTC_EMULATOR_HTTP_PORT": "2002", "IOTC_EMULATOR_METHOD_TIMEOUT": "7.5", "OTHER": "x"}
    config = load_config(file=file, environ=environ, overrides={"host": "::1", "mqtt_port": None})
    assert config.mqtt_port == 1001  # file (the override is None: not given)
    assert config.http_port == 2002  # environment beats the file
    assert config.host == "::1"  # an override beats both
    assert config.method_timeout == 7.5
    assert config.hub_names == ("h1", "h2")
    env_only = load_config(
        environ={"IOTC_EMULATOR_HUB_NAMES": "a.net, b.net", "IOTC_EMULATOR_STATE_DIR": "s"}
    )
    assert env_only.hub_names == ("a.net", "b.net")
    assert env_only.state_dir == Path("s")


def test_top_level_toml_keys(tmp_path: Path) -> None:
    file = tmp_path / "e.toml"
    file.write_text("dps_retry_after = 9\n")
    assert load_config(file=file, environ={}).dps_retry_after == 9


@pytest.mark.parametrize(
    ("environ", "overrides", "field"),
    [
        ({}, {"mqtt_port": 70000}, "mqtt_port"),
        ({"IOTC_EMULATOR_HTTP_PORT": "eighty"}, {}, "http_port"),
        ({}, {"group_primary_key": "not base64!"}, "group_primary_key"),
        ({"IOTC_EMULATOR_GROUP_SECONDARY_KEY": "@@@"}, {}, "group_secondary_key"),
        ({}, {"hub_names": ""}, "hub_names"),
        ({}, {"hub_names": "a/b"}, "hub_names"),
        ({}, {"method_timeout": 0}, "method_timeout"),
        ({}, {"dps_retry_after": -1}, "dps_retry_after"),
        ({}, {"x509_enrollment_ca": "/nonexistent/ca.pem"}, "x509_enrollment_ca"),
        ({}, {"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_errors_name_the_setting(environ: dict[str, str], overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_config(environ=environ, overrides=overrides)


def test_file_errors_name_the_file_and_setting(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("mqtt_prot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown\.toml.*mqtt_prot"):
        load_config(file=unknown, environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("mqtt_port = = 1\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_config(file=broken, environ={})
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_config(file=tmp_path / "missing.toml", environ={})
    bad_value = tmp_path / "bad.toml"
    bad_value.write_text('[emulator]\nhttp_port = "x"\n')
    with pytest.raises(ConfigError, match="http_port"):
        load_config(file=bad_value, environ={})
