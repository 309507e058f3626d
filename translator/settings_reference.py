"""The configuration reference (a Markdown table) generated from the settings' own declarations, so the
README cannot miss a key or quote a stale default (`iotc-translator config reference`; a test compares)."""

from __future__ import annotations

import enum
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
from pydantic.fields import FieldInfo

from translator.settings import fields_of

_BOUNDS: tuple[tuple[type[Any], str, str], ...] = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "length ≥"),
)


def rows(kind: Any, prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """(dotted key, field) of every leaf setting; a section's fields follow the top-level ones."""
    sections: list[tuple[str, FieldInfo]] = []
    for name, info in fields_of(kind).items():
        if fields_of(info.annotation):
            sections.append((name, info))
        else:
            yield prefix + name, info
    for name, info in sections:
        yield from rows(info.annotation, f"{prefix}{name}.")


def _default(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    if isinstance(value, enum.Enum):
        return repr(value.value)
    return repr(value)


def _allowed(info: FieldInfo) -> str:
    literal = _literal(info.annotation)
    if literal:
        return " \\| ".join(f'"{choice}"' for choice in literal)
    parts = []
    for metadata in info.metadata:
        for kind, attribute, symbol in _BOUNDS:
            if isinstance(metadata, kind):
                parts.append(f"{symbol} {getattr(metadata, attribute)}")
        pattern = getattr(metadata, "pattern", None)
        if pattern is not None:
            parts.append(f"matches `{pattern}`")
    return ", ".join(parts)


def _literal(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    for argument in typing.get_args(annotation):
        found = _literal(argument)
        if found:
            return found
    return ()


def reference(kind: Any) -> str:
    lines = ["| key | default | allowed | what |", "|---|---|---|---|"]
    for key, info in rows(kind):
        what = (info.description or "").replace("|", "\\|")
        lines.append(f"| `{key}` | `{_default(info)}` | {_allowed(info)} | {what} |")
    return "\n".join(lines) + "\n"
