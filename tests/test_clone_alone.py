"""A clone with nothing beside it (no ../shared reference material) collects and runs: the tests that need
the reference material skip with a reason instead of aborting collection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_collection_without_the_reference_material(tmp_path: Path) -> None:
    environment = {**os.environ, "IOTC_TRANSLATOR_TEST_SHARED": str(tmp_path / "absent")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/lwm2m",
            "tests/codec",
            "tests/coap",
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "error" not in run.stdout.splitlines()[-1].lower()


def test_reference_tests_skip_with_a_reason(tmp_path: Path) -> None:
    environment = {**os.environ, "IOTC_TRANSLATOR_TEST_SHARED": str(tmp_path / "absent")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/lwm2m/test_vectors.py",
            "tests/lwm2m/test_ddf_registry.py",
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "reference material" in run.stdout
    assert "failed" not in run.stdout.splitlines()[-1]
