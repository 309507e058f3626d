"""What the first `make test` installs (the SDK's venv, the npm DTDL parser), said on the terminal as it
happens: a minute of silence under `pytest -q` looks like a hang. The lines go to stderr with pytest's
capture suspended, so they show whatever the verbosity."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import IO

import pytest


def _say(config: pytest.Config | None, line: str, stream: IO[str] | None) -> None:
    capture = None if config is None else config.pluginmanager.getplugin("capturemanager")
    suspended = contextlib.nullcontext() if capture is None else capture.global_and_fixture_disabled()
    with suspended:
        print(line, file=stream or sys.stderr, flush=True)


@contextlib.contextmanager
def installing(
    what: str, config: pytest.Config | None = None, *, stream: IO[str] | None = None
) -> Iterator[None]:
    """Say what is being installed, then how long it took (or that it failed)."""
    started = time.monotonic()
    _say(config, f"\ninstalling {what} (once; cached under .cache/) ...", stream)
    try:
        yield
    except BaseException:
        _say(config, f"installing {what} failed after {time.monotonic() - started:.0f} s", stream)
        raise
    _say(config, f"installed {what} in {time.monotonic() - started:.0f} s", stream)
