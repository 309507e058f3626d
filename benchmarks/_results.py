"""Where a benchmark's run goes: JSON under benchmarks/results/ (ignored by git; the runs README.md and
docs/ quote are copied to results/committed/ and named next to their figures), and to stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return out
