"""Whether the environment running the tests holds what pyproject.toml asks for.

A checkout updated with `git pull` and tested with a virtual environment made before the update (or any
interpreter without the project installed) would otherwise fail collection with one ModuleNotFoundError per
test module that imports a new dependency; this names every missing or too-old distribution at once, with
the command that installs them. Standard library and `packaging` (which pytest itself requires) only, so it
can run before the test modules import anything else.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement


def unmet_requirements(pyproject: Path, extras: tuple[str, ...] = ("dev",)) -> list[str]:
    """The requirements of the project (and of `extras`) this interpreter does not satisfy, as text."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = list(project.get("dependencies", []))
    for extra in extras:
        wanted += project.get("optional-dependencies", {}).get(extra, [])
    unmet = []
    for line in wanted:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{requirement} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{requirement} (installed: {installed})")
    return unmet
