"""The observation plan: composite only where it changes no rate; everything observed exactly once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import REPO
from translator.codec import load_codec
from translator.codec.observation_plan import plan_observations
from translator.codec.spec import Observation
from translator.lwm2m import ObjectRegistry, Path

TEMPERATURE = load_codec(REPO / "codecs" / "3303-temperature.toml", ObjectRegistry.builtin())


def test_shipped_temperature_codec_keeps_its_pmin_out_of_the_composite() -> None:
    observations = TEMPERATURE.observations([Path(3303, 0)])
    plan = plan_observations(observations, composite=True)
    assert [(group.paths, group.composite) for group in plan] == [
        ((Path(3303, 0, 5601), Path(3303, 0, 5602)), True),  # no attributes: one schedule, one composite
        ((Path(3303, 0, 5700),), False),  # pmin 10, st 0.5: its own observation
    ]
    assert plan[1].attributes == {"pmin": 10, "pmax": 300, "st": 0.5}


def test_no_composite_for_a_device_without_it() -> None:
    plan = plan_observations(TEMPERATURE.observations([Path(3303, 0)]), composite=False)
    assert [group.paths for group in plan] == [
        (Path(3303, 0, 5601),),
        (Path(3303, 0, 5602),),
        (Path(3303, 0, 5700),),
    ]
    assert not any(group.composite for group in plan)


def test_equal_periods_share_a_composite_but_value_conditions_do_not() -> None:
    periodic: dict[str, int | float] = {"pmin": 10, "pmax": 600}
    banded: dict[str, int | float] = {"pmin": 60, "pmax": 3600, "st": 1}
    observations = [
        Observation(Path(6, 0, 0), periodic),
        Observation(Path(6, 0, 1), periodic),
        Observation(Path(3, 0, 9), banded),
        Observation(Path(3, 0, 10), banded),
        Observation(Path(6, 0, 1), periodic),  # a path given twice is observed once
    ]
    plan = plan_observations(observations, composite=True)
    assert [(group.paths, group.composite) for group in plan] == [
        ((Path(3, 0, 9),), False),
        ((Path(3, 0, 10),), False),
        ((Path(6, 0, 0), Path(6, 0, 1)), True),
    ]


_ATTRIBUTES: st.SearchStrategy[dict[str, int | float]] = st.dictionaries(
    st.sampled_from(["pmin", "pmax", "gt", "lt", "st"]), st.sampled_from([1, 10, 60.5]), max_size=3
)
_PATHS = st.builds(Path, st.sampled_from([3, 3303, 6]), st.integers(0, 2), st.integers(0, 6))


@given(st.lists(st.tuples(_PATHS, _ATTRIBUTES), max_size=25), st.booleans())
def test_every_path_once_and_composites_never_merge_rates(
    items: list[tuple[Path, dict[str, int | float]]], composite: bool
) -> None:
    observations = [Observation(path, attributes) for path, attributes in items]
    plan = plan_observations(observations, composite=composite)
    planned = [path for group in plan for path in group.paths]
    first: dict[Path, dict[str, int | float]] = {}
    for observation in observations:
        first.setdefault(observation.path, observation.attributes)
    assert sorted(planned) == sorted(first)  # each path exactly once
    for group in plan:
        assert all(dict(first[path]) == dict(group.attributes) for path in group.paths)
        if group.composite:
            assert composite and len(group.paths) > 1
            assert len({path[:2] for path in group.paths}) == 1  # one object instance: one component
            assert not {"gt", "lt", "st"} & set(group.attributes)
        else:
            assert len(group.paths) == 1
    assert [group.paths[0] for group in plan] == sorted(group.paths[0] for group in plan)
