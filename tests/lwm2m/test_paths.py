from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.lwm2m import ROOT, Lwm2mFormatError, Path, PathLevel
from translator.lwm2m.paths import common_prefix

segments = st.lists(st.integers(0, 65535), max_size=4)


@pytest.mark.parametrize(
    ("text", "expected", "level"),
    [
        ("/", (), PathLevel.ROOT),
        ("/3", (3,), PathLevel.OBJECT),
        ("/3/0", (3, 0), PathLevel.INSTANCE),
        ("/3/0/", (3, 0), PathLevel.INSTANCE),
        ("/3303/0/5700", (3303, 0, 5700), PathLevel.RESOURCE),
        ("/3/0/6/1", (3, 0, 6, 1), PathLevel.RESOURCE_INSTANCE),
        ("/65535/65535/65535/65535", (65535,) * 4, PathLevel.RESOURCE_INSTANCE),
    ],
)
def test_parse(text: str, expected: tuple[int, ...], level: PathLevel) -> None:
    path = Path.parse(text)
    assert path == expected
    assert path.level is level
    assert Path(*expected) == path


@pytest.mark.parametrize(
    "text",
    [
        "",
        "3/0",
        "//",
        "/3//0",
        "/3/0//",
        "/a",
        "/-1",
        "/+1",
        "/ 1",
        "/1_0",
        "/65536",
        "/1/2/3/4/5",
        "/٣",
        "/3/0x1",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(Lwm2mFormatError):
        Path.parse(text)


def test_constructor_validates() -> None:
    for bad in [(-1,), (65536,), (1, 2, 3, 4, 5), (True,)]:
        with pytest.raises(Lwm2mFormatError):
            Path(*bad)


def test_accessors_and_str() -> None:
    p = Path.parse("/3/0/6/1")
    assert (p.object_id, p.instance_id, p.resource_id, p.resource_instance_id) == (3, 0, 6, 1)
    assert ROOT.object_id is None and ROOT.is_root
    assert str(p) == "/3/0/6/1" and str(ROOT) == "/"
    assert repr(p) == "Path('/3/0/6/1')"
    assert p.parent == Path(3, 0, 6)
    assert Path(3).child(0) == Path(3, 0)
    assert Path(3, 0).join((6, 1)) == p
    with pytest.raises(Lwm2mFormatError):
        _ = ROOT.parent


def test_ordering_is_tree_order() -> None:
    paths = [Path.parse(s) for s in ["/3/0/7", "/3", "/3/0/6/0", "/1/0", "/3/0/6", "/", "/3/0"]]
    assert [str(p) for p in sorted(paths)] == ["/", "/1/0", "/3", "/3/0", "/3/0/6", "/3/0/6/0", "/3/0/7"]


def test_prefix_tests() -> None:
    p = Path.parse("/3/0/6/1")
    assert p.startswith(Path(3, 0)) and p.startswith(ROOT) and p.startswith(p)
    assert not p.startswith(Path(3, 1))
    assert Path(3).is_prefix_of(p) and not Path(30).is_prefix_of(p)
    assert common_prefix([Path(3, 0, 1), Path(3, 0, 6, 1), Path(3, 0, 9)]) == Path(3, 0)
    assert common_prefix([Path(3, 0, 1), Path(4, 0, 1)]) == ROOT
    assert common_prefix([]) == ROOT


def test_hashable_and_equal_to_tuples() -> None:
    assert {Path(3, 0): 1}[Path.parse("/3/0")] == 1
    assert hash(Path(3, 0)) == hash((3, 0))


@settings(max_examples=300, deadline=None)
@given(segments)
def test_format_parse_round_trip(segs: list[int]) -> None:
    path = Path(*segs)
    assert Path.parse(str(path)) == path
    assert path.level == len(segs)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_parse_arbitrary_text_raises_only_typed_error(text: str) -> None:
    with contextlib.suppress(Lwm2mFormatError):
        Path.parse(text)
