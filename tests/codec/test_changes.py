"""The change filter: repeated values are not news; properties never repeat; pmax is a heartbeat."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import REPO
from translator.codec import load_codec
from translator.codec.changes import ChangeFilter
from translator.lwm2m import ObjectRegistry, Path, Record

CODEC = load_codec(REPO / "codecs" / "3303-temperature.toml", ObjectRegistry.builtin())
TEMPERATURE = Path(3303, 0, 5700)  # telemetry, pmax 300
MINIMUM = Path(3303, 0, 5601)  # telemetry, no pmax
UNITS = Path(3303, 0, 5701)  # property


def _forward(changes: ChangeFilter, records: list[Record], now: float) -> list[Record]:
    selection = changes.select(records, now)
    changes.commit(selection)
    return list(selection.records)


def test_only_changed_values_go_out() -> None:
    changes = ChangeFilter(CODEC)
    first = [Record(TEMPERATURE, 21.5), Record(MINIMUM, 20.0), Record(UNITS, "Cel")]
    assert _forward(changes, first, 0.0) == first
    assert _forward(changes, first, 1.0) == []
    assert _forward(
        changes, [Record(TEMPERATURE, 22.0), Record(MINIMUM, 20.0), Record(UNITS, "Cel")], 2.0
    ) == [Record(TEMPERATURE, 22.0)]


def test_a_forgotten_selection_is_news_again_but_a_newer_value_stays_remembered() -> None:
    """A delivery refused after its values were committed (the hub away, the store failing) is forgotten:
    the device tells the value again and it must go out. A newer value committed meanwhile is kept."""
    changes = ChangeFilter(CODEC)
    refused = changes.select([Record(TEMPERATURE, 30.0), Record(MINIMUM, 20.0)], 0.0)
    changes.commit(refused)
    newer = changes.select([Record(MINIMUM, 19.0)], 0.5)
    changes.commit(newer)
    changes.forget(refused)
    assert _forward(changes, [Record(TEMPERATURE, 30.0), Record(MINIMUM, 19.0)], 1.0) == [
        Record(TEMPERATURE, 30.0)
    ]


def test_pmax_makes_an_unchanged_telemetry_value_a_heartbeat_but_never_a_property() -> None:
    changes = ChangeFilter(CODEC)
    steady = [Record(TEMPERATURE, 21.5), Record(MINIMUM, 20.0), Record(UNITS, "Cel")]
    _forward(changes, steady, 0.0)
    assert _forward(changes, steady, 200.0) == []
    # 295 s after it last went out: the device's pmax (300 s) notification, a little early by jitter.
    assert _forward(changes, steady, 295.0) == [Record(TEMPERATURE, 21.5)]
    assert _forward(changes, steady, 300.0) == []


def test_a_selection_not_committed_is_not_remembered() -> None:
    """A notification refused with back-pressure comes again; it must not be dropped as a repeat."""
    changes = ChangeFilter(CODEC)
    records = [Record(TEMPERATURE, 21.5)]
    assert list(changes.select(records, 0.0).records) == records
    assert list(changes.select(records, 0.1).records) == records


def test_unmapped_and_empty_records_pass_to_the_mapper() -> None:
    changes = ChangeFilter(CODEC)
    records = [Record(Path(3303, 0, 9999), 1), Record(TEMPERATURE, None)]
    assert _forward(changes, records, 0.0) == records
    assert _forward(changes, records, 1.0) == records


def test_a_boolean_is_not_equal_to_an_integer() -> None:
    changes = ChangeFilter(CODEC)
    assert _forward(changes, [Record(MINIMUM, 1)], 0.0)
    assert _forward(changes, [Record(MINIMUM, True)], 1.0)


@given(st.lists(st.sampled_from([20.0, 20.5, 21.0]), min_size=1, max_size=30))
def test_what_goes_out_is_the_sequence_without_repeats(values: list[float]) -> None:
    changes = ChangeFilter(CODEC)
    out = [r.value for i, v in enumerate(values) for r in _forward(changes, [Record(MINIMUM, v)], float(i))]
    expected = [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]
    assert out == expected
