"""The test environment check names what an out-of-date environment lacks (tests/environment.py)."""

from __future__ import annotations

from pathlib import Path

from tests.environment import unmet_requirements


def _pyproject(tmp_path: Path, dependencies: list[str]) -> Path:
    path = tmp_path / "pyproject.toml"
    listed = ", ".join(f'"{line}"' for line in dependencies)
    path.write_text(f'[project]\nname = "x"\ndependencies = [{listed}]\n', encoding="utf-8")
    return path


def test_a_missing_or_too_old_distribution_is_named(tmp_path: Path) -> None:
    pyproject = _pyproject(
        tmp_path,
        ["pytest>=1", "pytest>=9999", "no-such-distribution-here>=1", "pytest; python_version < '3'"],
    )
    assert unmet_requirements(pyproject) == [
        "pytest>=9999 (installed: " + __import__("pytest").__version__ + ")",
        "no-such-distribution-here>=1 (not installed)",
    ]


def test_the_project_s_own_requirements_are_met_here() -> None:
    assert unmet_requirements(Path(__file__).resolve().parents[1] / "pyproject.toml") == []
