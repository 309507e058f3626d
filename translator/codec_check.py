"""`iotc-translator codec check FILE…`: load codec files as `serve` would and report each one's problems.

Every problem is the loader's own `CodecFileError` (file, line, field, reason: an unknown resource, a
syntax error or unknown name in an expression, a unit that does not fit…); a good file is summed up with
what its template will hold, so a change can be checked before it is deployed. A file of transform tables
alone (`http.transforms`) is checked as `serve` loads it for the HTTP face.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

from translator.codec import Codec, CodecError, load_codec
from translator.codec.export import capability_count
from translator.codec.transform_loader import TRANSFORM_TABLES, load_transform_file
from translator.codec.transforms import Transforms
from translator.lwm2m import ObjectRegistry


def check_files(paths: Iterable[Path], registry: ObjectRegistry) -> tuple[list[str], int]:
    """One line per file (`ok …` or the error), and how many files failed."""
    lines: list[str] = []
    failed = 0
    for path in paths:
        try:
            if _transforms_only(path):
                transforms = load_transform_file(path)
                lines.append(f"ok: {path}: transforms for the HTTP face{_summary(transforms)}")
                continue
            codec = load_codec(path, registry)
        except CodecError as error:
            lines.append(f"error: {error}")
            failed += 1
            continue
        lines.append(_codec_line(path, codec))
    return lines, failed


def _transforms_only(path: Path) -> bool:
    """Whether the file holds transform tables and no template (an unreadable one is load_codec's to say)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return "template" not in doc and bool(doc) and set(doc) <= TRANSFORM_TABLES


def _codec_line(path: Path, codec: Codec) -> str:
    return f"ok: {path}: {codec.model_id}, {capability_count(codec)} capabilities{_summary(codec.transforms)}"


def _summary(t: Transforms) -> str:
    parts = [
        f"{len(t.computed)} computed" if t.computed else "",
        f"{len(t.enrichments)} enrichment" if t.enrichments else "",
        f"{len(t.dropped)} dropped" if t.dropped else "",
        f"{len(t.renamed)} renamed" if t.renamed else "",
    ]
    summary = ", ".join(p for p in parts if p)
    return f" ({summary})" if summary else ""
