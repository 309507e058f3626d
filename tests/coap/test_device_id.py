"""The endpoint name → device id rule: every id is one DPS, IoT Hub and IoT Central all accept, and no two
endpoint names share one. Pure: no sockets."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from translator.coap import BadRequest, device_id_for, endpoint_for
from translator.iotc.protocol.ids import (
    is_hub_device_id,
    is_registration_id,
    is_safe_device_id,
)

# Names as LwM2M clients send them (urn:imei:, urn:dev:ops:, urn:uuid:, plain names), and anything at all.
_URN = st.builds(
    "{}{}".format,
    st.sampled_from(["urn:imei:", "urn:dev:ops:", "urn:uuid:", "urn:dev:mac:", "", "X--", "x--"]),
    st.text(st.characters(codec="ascii"), min_size=1, max_size=140),
)
_NAMES = st.text(min_size=1, max_size=300) | _URN


@pytest.mark.parametrize(
    ("endpoint", "device_id"),
    [
        ("dev1", "dev1"),
        ("urn:imei:359000000000001", "urn:imei:359000000000001"),
        ("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
        ("urn:dev:ops:001a2b-sensor-1234", "urn:dev:ops:001a2b-sensor-1234"),
        ("urn:dev:ops:001A2B-Sensor-1234", "x--urn:dev:ops:001_a2_b-_sensor-1234"),
        ("wakaama-ep", "wakaama-ep"),
        ("node_7", "node_7"),
        ("Dev 1", "x--_dev_0321"),
        ("a%b", "x--a_037b"),
        ("ä", "x--_195_164"),
        ("dev.", "x--dev_046"),
        ("dev_", "x--dev_095"),
        ("-dev", "x---dev"),
        ("_x", "x--__x"),
        ("x--a", "x--x--a"),
    ],
)
def test_examples(endpoint: str, device_id: str) -> None:
    """The examples of docs/coap.md."""
    assert device_id_for(endpoint) == device_id
    assert endpoint_for(device_id) == endpoint


@given(_NAMES)
@example("Dev1")
@example("a" * 128)
@example("a" * 129)
@example("A" * 300)
@example("urn:uuid:" + "F" * 200)
def test_every_id_is_valid_for_dps_hub_and_central(endpoint: str) -> None:
    device_id = device_id_for(endpoint)
    assert is_safe_device_id(device_id), device_id
    assert is_registration_id(device_id) and is_hub_device_id(device_id)
    assert device_id == device_id.lower()  # DPS compares registration ids case-insensitively
    back = endpoint_for(device_id)
    assert back == endpoint or (back is None and len(device_id) > 64 and "_-" in device_id)


@given(_NAMES, _NAMES)
@example("Dev1", "dev1")
@example("dev_", "dev_095")
@example("x--a", "a")
@example("A" * 200, "A" * 201)
@example("a" * 129, "a" * 130)
@example("_", "__")
def test_no_two_names_share_an_id(a: str, b: str) -> None:
    if a != b:
        assert device_id_for(a) != device_id_for(b)


@given(_NAMES)
def test_ids_are_lowercase_and_case_distinct(endpoint: str) -> None:
    """DPS would treat `Dev1` and `dev1` as one registration: their ids must differ by more than case."""
    swapped = endpoint.swapcase()
    if swapped != endpoint:
        assert device_id_for(swapped).lower() != device_id_for(endpoint).lower()


def test_long_names_are_hashed_one_way() -> None:
    device_id = device_id_for("Sensor-" * 40)
    assert len(device_id) <= 128 and device_id.startswith("x--_sensor-_sensor-")
    assert endpoint_for(device_id) is None
    assert device_id != device_id_for("Sensor-" * 41)


def test_refused_names() -> None:
    with pytest.raises(BadRequest):
        device_id_for("")
    with pytest.raises(BadRequest):
        device_id_for("a" * 1025)


def test_ids_the_rule_never_made_have_no_endpoint() -> None:
    for device_id in ("%44ev", "x--_999", "x--_", "x--_-abc", "Dev1"):
        assert endpoint_for(device_id) is None, device_id
