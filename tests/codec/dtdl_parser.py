"""Microsoft's DTDL parser, run by Node: installed once into `.cache/dtdl-parser` (git-ignored).

No Python DTDL validator exists; the official parser ships on npm as WebAssembly. The install is pinned,
bounded in time and cached, so a fresh CI machine pays it once (a few seconds, 18 MB).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.install_progress import installing

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "dtdl-parser"
PACKAGE = "@digicatapult/dtdl-parser"
VERSION = "1.1.83"
ENTRY = CACHE / "node_modules" / "@digicatapult" / "dtdl-parser" / "build" / "index.js"
SCRIPT = Path(__file__).with_name("validate_dtdl.mjs")
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 120


class ParserUnavailable(RuntimeError):
    pass


def ensure_parser(config: pytest.Config | None = None) -> Path:
    """The parser's entry module, installing it with npm the first time."""
    marker = CACHE / ".installed"
    if marker.exists() and marker.read_text().strip() == f"{PACKAGE}@{VERSION}" and ENTRY.exists():
        return ENTRY
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise ParserUnavailable("node and npm are needed to run Microsoft's DTDL parser")
    CACHE.mkdir(parents=True, exist_ok=True)
    # The package declares Node 24 but runs on Node 20 (its code is WebAssembly plus a small loader).
    with installing(f"Microsoft's DTDL parser ({PACKAGE}@{VERSION}, npm) into {CACHE}", config):
        _npm_install(npm)
    marker.write_text(f"{PACKAGE}@{VERSION}\n")
    return ENTRY


def _npm_install(npm: str) -> None:
    subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(CACHE),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--engine-strict=false",
            f"{PACKAGE}@{VERSION}",
        ],
        check=True,
        timeout=INSTALL_TIMEOUT,
        capture_output=True,
    )


def validate(templates: dict[str, list[dict[str, Any]]], entry: Path) -> dict[str, list[dict[str, str]]]:
    """Parse every template in one Node process; per template, the parser's errors (empty: valid)."""
    done = subprocess.run(
        ["node", str(SCRIPT), str(entry)],
        input=json.dumps(templates),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise ParserUnavailable(f"DTDL parser failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, list[dict[str, str]]] = json.loads(done.stdout)
    return result
