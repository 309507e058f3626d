from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.errors import PropertyBagError
from translator.iotc.protocol.property_bag import (
    PropertyBag,
    decode_pairs,
    encode_pairs,
    format_creation_time,
)


def test_telemetry_bag_as_documented() -> None:
    assert PropertyBag.telemetry().encode() == "$.ct=application%2Fjson&$.ce=utf-8"


def test_component_timestamp_and_custom_properties() -> None:
    bag = PropertyBag.telemetry(
        component="thermostat1",
        creation_time=datetime(2024, 1, 2, 3, 4, 5, 678900, timezone(timedelta(hours=2))),
        custom={"a b": "x&y=z", "ü": "+/#"},
    )
    assert bag.encode() == (
        "$.ct=application%2Fjson&$.ce=utf-8&$.sub=thermostat1"
        "&iothub-creation-time-utc=2024-01-02T01%3A04%3A05.678Z"
        "&a%20b=x%26y%3Dz&%C3%BC=%2B%2F%23"
    )
    decoded = PropertyBag.decode(bag.encode())
    assert decoded.component == "thermostat1"
    assert decoded.creation_time == datetime(2024, 1, 2, 1, 4, 5, 678000, UTC)
    assert decoded.get("a b") == "x&y=z"
    assert decoded.get("ü") == "+/#"


def test_plus_is_not_a_space() -> None:
    assert decode_pairs("a=1+2&b") == [("a", "1+2"), ("b", "")]


def test_percent_encoded_dollar_keys_decode() -> None:
    bag = PropertyBag.decode("%24.ct=text%2Fplain&%24.sub=c1&%24.exp=2024-01-01T00%3A00%3A00Z")
    assert (bag.content_type, bag.component, bag.expiry) == ("text/plain", "c1", "2024-01-01T00:00:00Z")


def test_unparseable_creation_time_is_kept_not_dropped() -> None:
    bag = PropertyBag.decode("iothub-creation-time-utc=yesterday")
    assert bag.creation_time is None
    assert bag.get("iothub-creation-time-utc") == "yesterday"
    assert PropertyBag.decode(bag.encode()) == bag


def test_small_years_are_zero_padded() -> None:
    assert format_creation_time(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "bag",
    [
        PropertyBag(custom=(("$.ct", "x"),)),
        PropertyBag(custom=(("", "x"),)),
        PropertyBag(custom=(("a", "1"), ("a", "2"))),
        PropertyBag(
            creation_time=datetime(2024, 1, 1, tzinfo=UTC), custom=(("iothub-creation-time-utc", "x"),)
        ),
        PropertyBag(creation_time=datetime(2024, 1, 1)),  # naive: which zone?
        PropertyBag(custom=(("a", "\ud800"),)),
    ],
)
def test_refuses_bags_it_cannot_encode_faithfully(bag: PropertyBag) -> None:
    with pytest.raises(PropertyBagError):
        bag.encode()


def test_bad_utf8_escape_is_a_bag_error() -> None:
    with pytest.raises(PropertyBagError):
        decode_pairs("a=%FF")


_text = st.text(st.characters(codec="utf-8"))
_reserved = {"$.ct", "$.ce", "$.sub", "$.mid", "$.cid", "$.uid", "$.to", "$.exp", "iothub-ack"}
_keys = _text.filter(lambda k: bool(k) and k not in _reserved and k != "iothub-creation-time-utc")
_moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


@given(
    custom=st.dictionaries(_keys, _text, max_size=6),
    optional=st.fixed_dictionaries(
        {},
        optional={
            "content_type": _text,
            "content_encoding": _text,
            "component": _text,
            "message_id": _text,
            "correlation_id": _text,
            "user_id": _text,
            "expiry": _text,
            "to": _text,
            "ack": _text,
            "creation_time": _moments,
        },
    ),
)
def test_encode_decode_round_trip(custom: dict[str, str], optional: dict[str, object]) -> None:
    bag = PropertyBag(custom=tuple(custom.items()), **optional)  # type: ignore[arg-type]
    encoded = bag.encode()
    assert not any(ch in encoded for ch in "#+/ ?")
    assert PropertyBag.decode(encoded) == bag


@given(st.lists(st.tuples(_text, _text)))
def test_pairs_round_trip(pairs: list[tuple[str, str]]) -> None:
    pairs = [(k, v) for k, v in pairs if k]
    assert decode_pairs(encode_pairs(pairs)) == pairs
