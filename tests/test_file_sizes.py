"""Issue 18's house rule: no module in translator/ over 450 lines, so each keeps one job.

Generated tables are exempt (they are data, written by `tools/`); list them here by name, not by pattern,
so a new big module cannot hide behind the exemption.
"""

from __future__ import annotations

from pathlib import Path

import translator

LIMIT = 450
GENERATED = frozenset({"lwm2m/builtin_objects.py"})
# Still to be split along their seams (issue 18). An entry leaves as soon as its file is under the limit;
# `test_the_backlog_is_still_over_the_limit` insists, so the list only shrinks.
BACKLOG: frozenset[str] = frozenset()

ROOT = Path(translator.__file__).parent


def oversized(root: Path, limit: int = LIMIT, allowed: frozenset[str] = GENERATED) -> list[str]:
    found = []
    for module in sorted(root.rglob("*.py")):
        name = module.relative_to(root).as_posix()
        lines = _lines(module)
        if name not in allowed and lines > limit:
            found.append(f"translator/{name}: {lines} lines")
    return found


def test_no_module_in_translator_is_over_the_limit() -> None:
    assert oversized(ROOT, allowed=GENERATED | BACKLOG) == []


def test_the_backlog_is_still_over_the_limit() -> None:
    assert sorted(oversized(ROOT, allowed=GENERATED)) == sorted(
        f"translator/{name}: {_lines(ROOT / name)} lines" for name in BACKLOG
    )


def _lines(module: Path) -> int:
    return len(module.read_text(encoding="utf-8").splitlines())


def test_the_allow_list_names_existing_files_only() -> None:
    # A stale entry would let a new file of that name grow unseen.
    assert all((ROOT / name).is_file() for name in GENERATED | BACKLOG)


def test_the_check_sees_a_long_module(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * (LIMIT + 1), encoding="utf-8")
    (tmp_path / "short.py").write_text("x = 1\n" * LIMIT, encoding="utf-8")
    assert oversized(tmp_path) == [f"translator/pkg/long.py: {LIMIT + 1} lines"]
    assert oversized(tmp_path, allowed=frozenset({"pkg/long.py"})) == []
