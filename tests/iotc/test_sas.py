"""SAS tokens and key derivation, checked against vectors published by Microsoft."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.errors import SasTokenError
from translator.iotc.protocol.sas import (
    DPS_KEY_NAME,
    SasCredential,
    SasToken,
    TokenPolicy,
    derive_device_key,
    generate_sas_token,
    sign,
)
from translator.iotc.protocol.topics import dps_resource_uri, hub_resource_uri

# Microsoft Learn, "How to provision devices using symmetric key enrollment groups"
# (azure-docs: articles/iot-dps/how-to-legacy-device-symm-key.md, "Derive a device key"):
# the openssl and PowerShell examples derive this device key from this group key and registration id.
DOCS_GROUP_KEY = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
DOCS_REGISTRATION_ID = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
DOCS_DEVICE_KEY = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="

# Microsoft's Node.js SDK, azure-iot-sdk-node common/core/test/_shared_access_signature_test.js
# ("#toString returns a signature token"): key = base64("password"), resource "uri", expiry 12345.
NODE_SDK_KEY = base64.b64encode(b"password").decode()
NODE_SDK_TOKEN = "SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D&se=12345"

# Microsoft's Python SDK, azure-iot-sdk-python tests/unit/common/auth/test_signing_mechanism.py
# (SymmetricKeySigningMechanism .sign(), "Supports data strings in both string and byte formats").
PY_SDK_KEY = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
PY_SDK_MESSAGE = "sign this message"
PY_SDK_SIGNATURE = "8NJRMT83CcplGrAGaUVIUM/md5914KpWVNngSVoF9/M="

# Microsoft Learn, "Control access to IoT Hub by using shared access signatures"
# (iot-hub-dev-guide-sas.md, "Use a symmetric key in the identity registry"): the example result.
# The docs elide the key, so only the shape and parsing can be checked; note its lowercase %2f.
DOCS_HUB_TOKEN = (
    "SharedAccessSignature sr=myhub.azure-devices.net%2fdevices%2fdevice1"
    "&sig=13y8ejUk2z7PLmvtwR5RqlGBOVwiq7rQR3WZ5xZX3N4%3D&se=1456971697"
)


def test_device_key_derivation_matches_microsoft_docs() -> None:
    assert derive_device_key(DOCS_GROUP_KEY, DOCS_REGISTRATION_ID) == DOCS_DEVICE_KEY


def test_token_matches_node_sdk_vector() -> None:
    assert generate_sas_token("uri", NODE_SDK_KEY, 12345) == NODE_SDK_TOKEN


def test_token_with_policy_name_matches_node_sdk_vector() -> None:
    # Same test file: the signature does not depend on skn; the Node SDK orders skn before se,
    # which is immaterial (the service reads fields by name).
    token = SasToken.parse(generate_sas_token("uri", NODE_SDK_KEY, 12345, key_name="encode('Me')"))
    node = SasToken.parse(
        "SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D"
        "&skn=encode%28%27Me%27%29&se=12345"
    )
    assert token == node


def test_signature_matches_python_sdk_vector() -> None:
    assert sign(PY_SDK_KEY, PY_SDK_MESSAGE) == PY_SDK_SIGNATURE


def test_documented_hub_token_parses() -> None:
    token = SasToken.parse(DOCS_HUB_TOKEN)
    assert token.resource_uri == "myhub.azure-devices.net/devices/device1"
    assert token.expiry == 1456971697
    assert token.key_name is None
    assert token.signature == "13y8ejUk2z7PLmvtwR5RqlGBOVwiq7rQR3WZ5xZX3N4="
    # sr is kept verbatim (it is what was signed), so the token prints back unchanged.
    assert str(token) == DOCS_HUB_TOKEN


def test_hub_token_encodes_resource_like_the_python_sdk() -> None:
    key = DOCS_DEVICE_KEY
    token = generate_sas_token(hub_resource_uri("myhub.azure-devices.net", "device1"), key, 1456971697)
    sr = "myhub.azure-devices.net%2Fdevices%2Fdevice1"
    assert token.startswith(f"SharedAccessSignature sr={sr}&sig=")
    assert token.endswith("&se=1456971697")
    assert "skn=" not in token
    signature = sign(key, f"{sr}\n1456971697")
    assert f"&sig={quote(signature, safe='')}&" in token


def test_dps_token_has_registration_policy_and_encoded_scope_path() -> None:
    uri = dps_resource_uri("0ne00000A0A", DOCS_REGISTRATION_ID)
    token = SasToken.parse(generate_sas_token(uri, DOCS_DEVICE_KEY, 1700000000, key_name=DPS_KEY_NAME))
    assert token.sr == "0ne00000A0A%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
    assert token.key_name == "registration"
    assert str(token).endswith("&se=1700000000&skn=registration")
    assert token.is_signed_by(DOCS_DEVICE_KEY)
    assert not token.is_signed_by(PY_SDK_KEY)


def test_signature_characters_are_percent_encoded() -> None:
    # Find a token whose base64 signature has + or /, and check neither reaches the wire raw.
    for expiry in range(1000):
        token = SasToken.create("h/devices/d", PY_SDK_KEY, expiry)
        if "+" in token.signature or "/" in token.signature:
            text = str(token)
            sig = text.split("&sig=")[1].split("&", maxsplit=1)[0]
            assert "+" not in sig and "/" not in sig and "=" not in sig
            return
    pytest.fail("no signature with + or / in 1000 tries")


@pytest.mark.parametrize(
    "bad",
    [
        "sr=a&sig=b&se=1",
        "SharedAccessSignature sr=a&sig=b",
        "SharedAccessSignature sr=a&sig=b&se=x",
        "SharedAccessSignature sr=a&sig=b&se=1&foo=2",
        "SharedAccessSignature sr=a&sr=a&sig=b&se=1",
        "SharedAccessSignature sr=a&sig&se=1",
        "SharedAccessSignature sr=a&sig=b&se=-1",
    ],
)
def test_parse_rejects_malformed_tokens(bad: str) -> None:
    with pytest.raises(SasTokenError):
        SasToken.parse(bad)


@pytest.mark.parametrize("key", ["not base64!", "", "YWJjx"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(SasTokenError):
        sign(key, "x")
    with pytest.raises(SasTokenError):
        SasCredential("h/devices/d", key)


_keys = st.binary(min_size=1, max_size=64).map(lambda raw: base64.b64encode(raw).decode())
_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


@given(
    resource=_text,
    key=_keys,
    expiry=st.integers(min_value=0, max_value=2**40),
    key_name=st.none() | _text,
)
def test_generated_tokens_parse_back(resource: str, key: str, expiry: int, key_name: str | None) -> None:
    text = generate_sas_token(resource, key, expiry, key_name)
    token = SasToken.parse(text)
    assert token.resource_uri == resource
    assert token.expiry == expiry
    assert token.key_name == key_name
    assert token.is_signed_by(key)
    assert str(token) == text
    # Nothing in the token may break the `k=v&k=v` structure or MQTT's password field.
    assert text.count("&") == (3 if key_name is not None else 2)


def test_token_policy_renews_before_expiry() -> None:
    credential = SasCredential("h/devices/d", DOCS_DEVICE_KEY, policy=TokenPolicy(ttl=3600, renew_before=120))
    issued = credential.issue(now=1_000_000.5)
    assert issued.expiry == 1_003_600
    assert issued.renew_at == 1_003_480
    assert not issued.needs_renewal(1_003_479.9)
    assert issued.needs_renewal(1_003_480)
    assert issued.seconds_until_renewal(1_003_000) == 480
    assert issued.seconds_until_renewal(2_000_000) == 0
    assert not issued.expired(1_003_599)
    assert issued.expired(1_003_600)
    assert SasToken.parse(str(issued)).is_signed_by(DOCS_DEVICE_KEY)


@pytest.mark.parametrize(("ttl", "renew_before"), [(0, 0), (60, 60), (60, -1)])
def test_token_policy_rejects_nonsense(ttl: int, renew_before: int) -> None:
    with pytest.raises(ValueError, match=r"ttl|renew_before"):
        TokenPolicy(ttl=ttl, renew_before=renew_before)


def test_credential_repr_hides_the_key() -> None:
    credential = SasCredential("h/devices/d", DOCS_DEVICE_KEY)
    assert DOCS_DEVICE_KEY not in repr(credential)
