"""What every codec-file reader does with TOML tables: blame a field of the file, read arrays of tables,
refuse unknown keys, read a DTDL name. The codec loader and the transform loader share it; each reads its
own strings (the transform loader refuses empty ones)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.codec.errors import CodecFileError
from translator.codec.names import MAX_NAME, is_dtdl_name


class TableReader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, reason: str) -> CodecFileError:
        return CodecFileError(self.source, field, reason)

    def tables(self, doc: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
        value = doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise self.fail(key, f"must be an array of tables ([[{key}]])")
        return value

    def keys(self, table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                field = f"{where}.{key}" if where else key
                raise self.fail(field, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def string(self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        raise NotImplementedError

    def name(self, table: Mapping[str, Any], where: str, key: str = "name") -> str:
        name = self.string(table, key, where, required=True)
        assert name is not None
        if not is_dtdl_name(name):
            raise self.fail(
                f"{where}.{key}",
                f"{name!r} is not a DTDL name (a letter, then letters, digits or _, "
                f"not ending in _, ≤ {MAX_NAME})",
            )
        return name
