"""`iotc-translator codec check FILE…`: load codec files as `serve` would and report each one's problems.

Every problem is the loader's own `CodecFileError` (file, line, field, reason: an unknown resource, a
syntax error or unknown name in an expression, a unit that does not fit…); a good file is summed up with
what its template will hold, so a change can be checked before it is deployed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from translator.codec import CodecError, load_codec
from translator.codec.export import capability_count
from translator.lwm2m import ObjectRegistry


def check_files(paths: Iterable[Path], registry: ObjectRegistry) -> tuple[list[str], int]:
    """One line per file (`ok …` or the error), and how many files failed."""
    lines: list[str] = []
    failed = 0
    for path in paths:
        try:
            codec = load_codec(path, registry)
        except CodecError as error:
            lines.append(f"error: {error}")
            failed += 1
            continue
        t = codec.transforms
        extras = [
            f"{len(t.computed)} computed" if t.computed else "",
            f"{len(t.enrichments)} enrichment" if t.enrichments else "",
            f"{len(t.dropped)} dropped" if t.dropped else "",
            f"{len(t.renamed)} renamed" if t.renamed else "",
        ]
        summary = ", ".join(e for e in extras if e)
        lines.append(
            f"ok: {path}: {codec.model_id}, {capability_count(codec)} capabilities"
            + (f" ({summary})" if summary else "")
        )
    return lines, failed
