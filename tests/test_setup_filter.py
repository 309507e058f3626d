"""The set-up leaves out observations of resources the device's own Read showed absent (pure)."""

from __future__ import annotations

from translator.bridge.setup_filter import present_only
from translator.codec.spec import Observation
from translator.lwm2m import Path, Record


def test_absent_resources_of_read_instances_are_left_out() -> None:
    observations = [
        Observation(Path(3, 0, 9), {"pmin": 60}),
        Observation(Path(3, 0, 10), {"pmin": 60}),
        Observation(Path(3, 0, 7), {}),
        Observation(Path(6, 0, 2), {}),  # /6/0 was not read: nothing known, kept
    ]
    read = {Path(3, 0): [Record(Path(3, 0, 9), 100), Record(Path(3, 0, 7, 0), 3800)]}
    kept, absent = present_only(observations, read)
    assert [o.path for o in kept] == [Path(3, 0, 9), Path(3, 0, 7), Path(6, 0, 2)]
    assert absent == [Path(3, 0, 10)]
