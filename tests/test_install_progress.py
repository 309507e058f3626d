"""The first `make test`'s long installs say what they install and how long it took."""

from __future__ import annotations

import io
import re

import pytest

from tests.install_progress import installing


def test_an_install_says_what_and_how_long() -> None:
    out = io.StringIO()
    with installing("the DTDL parser", stream=out):
        pass
    started, finished = out.getvalue().strip().splitlines()
    assert started.startswith("installing the DTDL parser")
    assert re.fullmatch(r"installed the DTDL parser in \d+ s", finished)


def test_a_failed_install_says_so() -> None:
    out = io.StringIO()
    with pytest.raises(OSError), installing("the SDK", stream=out):
        raise OSError("no network")
    assert re.search(r"installing the SDK failed after \d+ s", out.getvalue())
