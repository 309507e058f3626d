"""Issue 18 §12: a benchmark figure quoted in README.md or docs/ names the committed JSON of its run, and
every committed run is quoted somewhere — so figures and files stay paired when either moves."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = "benchmarks/results/committed/"
# `committed/observation_cost-{before,after}.json` names two files, as a shell would expand it.
_NAME = re.compile(re.escape(COMMITTED) + r"([A-Za-z0-9_.{},-]+?\.json)")


def expand(pattern: str) -> list[str]:
    parts = re.split(r"\{([^{}]*)\}", pattern)
    choices = [part.split(",") if index % 2 else [part] for index, part in enumerate(parts)]
    return ["".join(combination) for combination in itertools.product(*choices)]


def named_runs(texts: dict[str, str]) -> dict[str, list[str]]:
    """Each committed file a text names → the texts naming it."""
    named: dict[str, list[str]] = {}
    for where, text in texts.items():
        for match in _NAME.finditer(text):
            for name in expand(match.group(1)):
                named.setdefault(name, []).append(where)
    return named


def unpaired(texts: dict[str, str], files: set[str]) -> list[str]:
    named = named_runs(texts)
    missing = [
        f"{', '.join(sorted(set(named[name])))} names {COMMITTED}{name}, which is not there"
        for name in sorted(set(named) - files)
    ]
    unnamed = [
        f"{COMMITTED}{name} is named in no figure of README.md or docs/"
        for name in sorted(files - set(named))
    ]
    return missing + unnamed


def _docs() -> dict[str, str]:
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8") for path in paths}


def _committed() -> set[str]:
    return {path.name for path in (ROOT / COMMITTED).glob("*.json")}


def test_every_quoted_run_is_committed_and_every_committed_run_is_quoted() -> None:
    assert unpaired(_docs(), _committed()) == []


def test_committed_runs_are_json() -> None:
    for name in sorted(_committed()):
        assert isinstance(json.loads((ROOT / COMMITTED / name).read_text(encoding="utf-8")), dict), name


def test_a_missing_run_and_an_unquoted_run_are_both_found() -> None:
    texts = {"README.md": f"x ({COMMITTED}a-{{1,2}}.json) y `{COMMITTED}b.json`."}
    assert unpaired(texts, {"a-1.json", "a-2.json", "b.json"}) == []
    assert unpaired(texts, {"a-1.json", "b.json", "c.json"}) == [
        f"README.md names {COMMITTED}a-2.json, which is not there",
        f"{COMMITTED}c.json is named in no figure of README.md or docs/",
    ]


def test_git_tracks_the_committed_runs_and_ignores_the_others() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        check = subprocess.run([git, "check-ignore", "-q", path], cwd=ROOT, check=False, timeout=30)
        return check.returncode == 0

    assert ignored("benchmarks/results/throughput-throughput-1000.json")
    assert not ignored(f"{COMMITTED}throughput-1000.json")
