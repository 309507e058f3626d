"""DTDL names: the rule, the generation scheme, and hypothesis on both."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from translator.codec.names import camel_name, component_names, display_name, is_dtdl_name, resource_names


def test_rule() -> None:
    assert is_dtdl_name("a")
    assert is_dtdl_name("sensorValue_5700")
    assert is_dtdl_name("a" * 64)
    for bad in ("", "a" * 65, "1abc", "_a", "a_", "a-b", "a b", "é", "a\n"):
        assert not is_dtdl_name(bad), bad


def test_camel_examples() -> None:
    assert camel_name("Sensor Value", prefix="r", empty="resource") == "sensorValue"
    assert camel_name("LWM2M Server URI", prefix="r", empty="resource") == "lwm2mServerUri"
    assert camel_name("DTLS/TLS Ciphersuite", prefix="r", empty="resource") == "dtlsTlsCiphersuite"
    assert camel_name("On/Off", prefix="r", empty="resource") == "onOff"
    assert camel_name("3D Position", prefix="r", empty="resource") == "r3dPosition"
    assert camel_name("Température", prefix="r", empty="resource") == "temperature"
    assert camel_name("---", prefix="r", empty="resource") == "resource"


def test_collisions_are_all_suffixed() -> None:
    names = resource_names({1: "Value", 2: "value", 3: "Other", 4: "VALUE!"})
    assert names == {1: "value_1", 2: "value_2", 3: "other", 4: "value_4"}


def test_component_forms() -> None:
    names = component_names(
        [
            (3, 0, "Device", False),
            (3303, 0, "Temperature", True),
            (3303, 1, "Temperature", True),
            (9999, 0, "Temperature", False),
        ]
    )
    assert names == {
        (3, 0): "device",
        (3303, 0): "temperature_3303_0",
        (3303, 1): "temperature_3303_1",
        (9999, 0): "temperature_9999_0",
    }


def test_display_name_is_bounded() -> None:
    assert display_name("  a   b ", "x") == "a b"
    assert display_name("", "x") == "x"
    assert len(display_name("y" * 100, "x")) == 64


resource_maps = st.dictionaries(st.integers(0, 65535), st.text(max_size=120), max_size=40)


@given(resource_maps)
def test_generated_resource_names_are_valid_and_unique(resources: dict[int, str]) -> None:
    names = resource_names(resources)
    assert set(names) == set(resources)
    assert all(is_dtdl_name(n) for n in names.values())
    assert len(set(names.values())) == len(names)


@given(resource_maps)
def test_generated_names_do_not_depend_on_order(resources: dict[int, str]) -> None:
    assert resource_names(dict(reversed(list(resources.items())))) == resource_names(resources)


@given(
    st.lists(
        st.tuples(st.integers(0, 65535), st.integers(0, 65535), st.text(max_size=80)),
        max_size=30,
        unique_by=lambda row: (row[0], row[1]),
    ),
)
def test_generated_component_names_are_valid_and_unique(rows: list[tuple[int, int, str]]) -> None:
    # One name per object id, as in a registry; the object's multiplicity follows from its id here.
    object_names = {oid: name for oid, _, name in rows}
    names = component_names((oid, iid, object_names[oid], oid % 2 == 0) for oid, iid, _ in rows)
    assert all(is_dtdl_name(n) for n in names.values())
    assert len(set(names.values())) == len(names) == len(rows)
