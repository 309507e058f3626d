"""Which content format to ask a device for, from what it announced. Pure.

Order: the `ct=` hint of the registration (formats we can decode), then the formats of the client's
LwM2M version, newest first. The caller walks the list and moves on when the device answers 4.06
(Read) or 4.15 (Write), and remembers what worked.
"""

from __future__ import annotations

from translator.coap.errors import Code
from translator.lwm2m import SUPPORTED_FORMATS, ContentFormat, Path

# Device answers after which another content format is worth a try.
FORMAT_RETRY = frozenset({Code.NOT_ACCEPTABLE, Code.UNSUPPORTED_CONTENT_FORMAT})
# Answers to a composite request meaning "no composite operations here": fall back to single operations.
NO_COMPOSITE = frozenset(
    {Code.BAD_REQUEST, Code.METHOD_NOT_ALLOWED, Code.NOT_FOUND, Code.NOT_IMPLEMENTED, Code.BAD_OPTION}
)

_BY_VERSION: dict[tuple[int, int], tuple[int, ...]] = {
    (1, 0): (ContentFormat.TLV, ContentFormat.LWM2M_JSON),
    (1, 1): (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV, ContentFormat.LWM2M_JSON),
    (1, 2): (ContentFormat.LWM2M_CBOR, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV),
}
_COMPOSITE = (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON)
_MULTI = frozenset(
    {
        ContentFormat.SENML_CBOR,
        ContentFormat.SENML_JSON,
        ContentFormat.TLV,
        ContentFormat.LWM2M_JSON,
        ContentFormat.LWM2M_CBOR,
    }
)


def _dedup(formats: list[int]) -> list[int]:
    seen: set[int] = set()
    return [f for f in formats if not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]


def _base(version: tuple[int, int], hints: tuple[int, ...]) -> list[int]:
    known = _BY_VERSION.get(version, _BY_VERSION[(1, 2)] if version > (1, 2) else _BY_VERSION[(1, 0)])
    return [h for h in hints if h in _MULTI and h in SUPPORTED_FORMATS] + list(known)


def read_formats(version: tuple[int, int], hints: tuple[int, ...], path: Path) -> list[int]:
    """Accept values to try for a Read/Observe of `path`."""
    formats = _base(version, hints)
    if len(path) >= 3:
        formats.append(ContentFormat.TEXT)  # a single value: every client has text
    return _dedup(formats)


def write_formats(version: tuple[int, int], hints: tuple[int, ...], path: Path, single: bool) -> list[int]:
    """Content-Format values to try for a Write to `path` (`single`: one resource value)."""
    formats = _base(version, hints)
    if single and len(path) == 3:
        formats.append(ContentFormat.TEXT)
    return _dedup(formats)


def composite_formats(version: tuple[int, int], hints: tuple[int, ...]) -> list[int]:
    """Formats for Read-/Observe-Composite (1.1+ only; empty for 1.0 clients)."""
    if version < (1, 1):
        return []
    return _dedup([h for h in hints if h in _COMPOSITE] + list(_COMPOSITE))
