"""The line of a codec error's field in its TOML text (`computed[1].expression` → 23). Pure.

`tomllib` keeps no positions, so the field's table header is found by counting `[[name]]` (or `[name]`)
headers, then its key below it. Only the layouts codec files are written in (tables and arrays of tables,
one key per line) are followed; anything else (inline tables, dotted keys) gives None, and the message
names the field without a line.
"""

from __future__ import annotations

import re

_FIELD = re.compile(r"(?P<table>[A-Za-z_]+)(?:\[(?P<index>\d+)\])?(?:\.(?P<key>[A-Za-z_]+))?")
_HEADER = re.compile(r"\s*(\[\[?)\s*([A-Za-z_]+)\s*\]\]?\s*(?:#.*)?$")


def field_line(text: str, field: str) -> int | None:
    """The 1-based line of `field` in `text`, or None when it cannot be told."""
    match = _FIELD.match(field)
    if match is None:
        return None
    table, key = match["table"], match["key"]
    array = match["index"] is not None
    wanted = int(match["index"]) if array else 0
    lines = text.splitlines()
    start = _header(lines, table, array, wanted)
    if start is None:
        # A top-level key (`template` missing its table is no line at all).
        return None if array or key is not None else _key(lines, 0, table)
    if key is None:
        return start
    return _key(lines, start, key) or start


def _header(lines: list[str], table: str, array: bool, wanted: int) -> int | None:
    seen = -1
    for number, line in enumerate(lines, start=1):
        found = _HEADER.match(line)
        if found is not None and found[2] == table and (found[1] == "[[") == array:
            seen += 1
            if seen == wanted:
                return number
    return None


def _key(lines: list[str], start: int, key: str) -> int | None:
    """The line of `key` in the table whose header is line `start` (0: before any header)."""
    pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
    for number in range(start + 1, len(lines) + 1):
        line = lines[number - 1]
        if _HEADER.match(line):
            return None
        if pattern.match(line):
            return number
    return None
