from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.errors import TwinFormatError
from translator.iotc.protocol.twin import (
    AckCode,
    Acknowledgement,
    DesiredProperty,
    Twin,
    ack_patch,
    desired_properties,
    merge_patches,
    parse_desired_patch,
    pending_acknowledgements,
    reported_patch,
)


def test_read_only_property_patches() -> None:
    assert reported_patch({"serialNumber": "123"}) == {"serialNumber": "123"}
    assert reported_patch({"maxTempSinceLastReboot": 21.5}, "thermostat1") == {
        "thermostat1": {"__t": "c", "maxTempSinceLastReboot": 21.5}
    }


@pytest.mark.parametrize("name", ["", "$version", "__t"])
def test_reserved_names_are_refused(name: str) -> None:
    with pytest.raises(TwinFormatError):
        reported_patch({name: 1})
    with pytest.raises(TwinFormatError):
        reported_patch({"ok": 1}, component=name)


def test_acknowledgement_documents() -> None:
    assert ack_patch("targetTemperature", 22, version=7) == {
        "targetTemperature": {"value": 22, "ac": 200, "av": 7, "ad": "completed"}
    }
    assert ack_patch(
        "targetTemperature",
        22,
        version=7,
        code=AckCode.IN_PROGRESS,
        description=None,
        component="thermostat1",
    ) == {"thermostat1": {"__t": "c", "targetTemperature": {"value": 22, "ac": 202, "av": 7}}}
    # IoT Plug and Play: a device default is acknowledged with ac 203 and av 0.
    assert ack_patch("fanSpeed", 1, version=0, code=AckCode.DEVICE_DEFAULT, description="default")[
        "fanSpeed"
    ] == {
        "value": 1,
        "ac": 203,
        "av": 0,
        "ad": "default",
    }


def test_desired_patch_root_and_component() -> None:
    body = json.dumps(
        {
            "targetTemperature": 21,
            "thermostat1": {"__t": "c", "targetTemperature": 23, "mode": None},
            "$version": 9,
        }
    ).encode()
    assert parse_desired_patch(body) == [
        DesiredProperty("targetTemperature", 21, 9),
        DesiredProperty("targetTemperature", 23, 9, component="thermostat1"),
        DesiredProperty("mode", None, 9, component="thermostat1"),
    ]


def test_object_values_without_marker_are_root_properties_unless_the_model_says_component() -> None:
    desired = {"limits": {"low": 1, "high": 5}, "$version": 3}
    assert desired_properties(desired) == [DesiredProperty("limits", {"low": 1, "high": 5}, 3)]
    assert desired_properties(desired, components={"limits"}) == [
        DesiredProperty("low", 1, 3, component="limits"),
        DesiredProperty("high", 5, 3, component="limits"),
    ]


def test_desired_property_acknowledges_itself() -> None:
    prop = DesiredProperty("targetTemperature", 23, 9, component="thermostat1")
    assert prop.acknowledge() == {
        "thermostat1": {"__t": "c", "targetTemperature": {"value": 23, "ac": 200, "av": 9, "ad": "completed"}}
    }
    rejected = prop.acknowledge(AckCode.REJECTED, "out of range", value=20)
    assert rejected["thermostat1"]["targetTemperature"] == {
        "value": 20,
        "ac": 400,
        "av": 9,
        "ad": "out of range",
    }


@pytest.mark.parametrize(
    "payload", [b"not json", b"[1]", b'{"a": 1}', b'{"$version": "1"}', b'{"$version": true}', b"\xff"]
)
def test_bad_desired_patches(payload: bytes) -> None:
    with pytest.raises(TwinFormatError):
        parse_desired_patch(payload)


def test_twin_document() -> None:
    twin = Twin.from_json(
        b'{"desired": {"a": 1, "$version": 4}, "reported": {"c1": {"__t": "c", "b": 2}, "$version": 6}}'
    )
    assert (twin.desired_version, twin.reported_version) == (4, 6)
    assert twin.reported_value("b", "c1") == 2
    assert twin.reported_value("b") is None
    assert twin.reported_value("x", "missing") is None
    with pytest.raises(TwinFormatError):
        Twin.from_json(b'{"desired": {"$version": 1}}')
    with pytest.raises(TwinFormatError):
        Twin.from_json(b'{"desired": {}, "reported": {"$version": 1}}')


def _twin(desired: dict[str, Any], reported: dict[str, Any]) -> Twin:
    return Twin.from_document({"desired": desired, "reported": reported})


def test_reconciliation() -> None:
    twin = _twin(
        {
            "fresh": 1,  # never acknowledged
            "current": 2,  # acknowledged at the current version
            "unchanged": 3,  # acknowledged earlier, same value: another property moved $version
            "changed": 4,  # acknowledged earlier with another value
            "interrupted": 5,  # 202 in progress when the device went away
            "c1": {"__t": "c", "inner": 6, "done": 7},
            "$version": 10,
        },
        {
            "current": {"value": 2, "ac": 200, "av": 10, "ad": "completed"},
            "unchanged": {"value": 3, "ac": 200, "av": 8},
            "changed": {"value": 3, "ac": 200, "av": 8},
            "interrupted": {"value": 5, "ac": 202, "av": 10},
            "c1": {"__t": "c", "inner": 6, "done": {"value": 7, "ac": 400, "av": 9}},
            "$version": 30,
        },
    )
    pending = pending_acknowledgements(twin)
    assert [(p.component, p.name) for p in pending] == [
        (None, "fresh"),
        (None, "changed"),
        (None, "interrupted"),
        ("c1", "inner"),  # a plain reported value is not an acknowledgement
    ]
    assert all(p.version == 10 for p in pending)


def test_acknowledgement_parsing_is_strict_about_shape() -> None:
    assert Acknowledgement.from_document({"value": 1, "ac": 200, "av": 3}) == Acknowledgement(1, 200, 3)
    assert Acknowledgement.from_document({"value": 1, "ac": True, "av": 3}) is None
    assert Acknowledgement.from_document({"ac": 200, "av": 3}) is None
    assert Acknowledgement.from_document(5) is None


def test_merge_patches() -> None:
    merged = merge_patches(
        [
            reported_patch({"a": 1}),
            reported_patch({"x": 1}, "c1"),
            reported_patch({"a": 2, "b": None}),
            reported_patch({"y": 2}, "c1"),
        ]
    )
    assert merged == {"a": 2, "b": None, "c1": {"__t": "c", "x": 1, "y": 2}}


_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,63}", fullmatch=True)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    values=st.dictionaries(_names, _json, min_size=1, max_size=5),
    component=st.none() | _names,
    version=st.integers(0, 2**31),
)
def test_desired_and_ack_round_trip(values: dict[str, Any], component: str | None, version: int) -> None:
    # The hub's desired patch for these values, then our acknowledgements, read back as a twin.
    desired: dict[str, Any] = dict(values) if component is None else {component: {"__t": "c", **values}}
    desired["$version"] = version
    wire = json.loads(json.dumps(desired))
    props = parse_desired_patch(
        json.dumps(wire).encode(), components=None if component is None else {component}
    )
    assert [(p.component, p.name) for p in props] == [(component, name) for name in values]
    reported = json.loads(json.dumps(merge_patches(p.acknowledge() for p in props)))
    reported["$version"] = 1
    twin = _twin(wire, reported)
    assert pending_acknowledgements(twin, components=None if component is None else {component}) == []
    for prop in props:
        ack = Acknowledgement.from_document(twin.reported_value(prop.name, prop.component))
        assert ack == Acknowledgement(prop.value, 200, version, "completed")
