"""LwM2M CBOR (CoAP Content-Format 11544, LwM2M 1.2).

Nested maps rooted at `/`: each key is one path segment (an unsigned integer) or an array of segments,
so `{[3303, 0, 5700]: 26.0}`, `{3303: {0: {5700: 26.0}}}` and `{[3303, 0]: {5700: 26.0}}` are the same
record. Leaves are values typed as in plain CBOR (Objlnk as `oid:iid` text); `null` is a record without
a value. Indefinite-length maps are accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

from translator.lwm2m.errors import ErrorKind, Lwm2mFormatError
from translator.lwm2m.formats import _cbor
from translator.lwm2m.formats._values import coerce, model_type, typed_for_encoding
from translator.lwm2m.formats.cbor import to_cbor_value
from translator.lwm2m.formats.tlv import sorted_unique
from translator.lwm2m.paths import MAX_DEPTH, MAX_ID, ROOT, Path
from translator.lwm2m.records import Record
from translator.lwm2m.registry import ResourceLookup

FORMAT = "LwM2M CBOR"


def _segments(key: object) -> tuple[int, ...]:
    if type(key) is int:
        segs: tuple[object, ...] = (key,)
    elif type(key) is tuple and key:
        segs = key
    else:
        raise Lwm2mFormatError(f"{FORMAT}: map key {key!r} is not a path segment or an array of segments")
    for s in segs:
        if type(s) is not int or not 0 <= s <= MAX_ID:
            raise Lwm2mFormatError(f"{FORMAT}: path segment {s!r} is not an integer in 0..{MAX_ID}")
    return segs  # type: ignore[return-value]


def _walk(
    node: dict[object, object], prefix: tuple[int, ...], lookup: ResourceLookup | None, out: list[Record]
) -> None:
    for key, value in node.items():
        segs = prefix + _segments(key)
        if len(segs) > MAX_DEPTH:
            raise Lwm2mFormatError(f"{FORMAT}: path {segs} is deeper than {MAX_DEPTH} segments")
        if type(value) is dict:
            _walk(value, segs, lookup, out)
            continue
        path = Path.of(segs)
        if len(path) < 3:
            raise Lwm2mFormatError(f"{FORMAT}: value for {path}, which is not a resource")
        out.append(Record(path, None if value is None else coerce(value, model_type(lookup, path), path)))


def decode(payload: bytes, base_path: Path, lookup: ResourceLookup | None, now: float | None) -> list[Record]:
    root = _cbor.loads(payload, FORMAT)
    if type(root) is not dict:
        raise Lwm2mFormatError(f"{FORMAT}: payload is not a map")
    out: list[Record] = []
    _walk(root, (), lookup, out)
    return out


def encode(records: Sequence[Record], base_path: Path | None, lookup: ResourceLookup | None) -> bytes:
    tree: dict[int, object] = {}
    for record in sorted_unique(records, base_path or ROOT, FORMAT):
        node = tree
        for seg in record.path[:-1]:
            child = node.setdefault(seg, {})
            if type(child) is not dict:
                raise Lwm2mFormatError(f"{FORMAT}: {record.path} is under a value", ErrorKind.NOT_ACCEPTABLE)
            node = child
        if record.path[-1] in node:
            raise Lwm2mFormatError(
                f"{FORMAT}: {record.path} has both a value and children", ErrorKind.NOT_ACCEPTABLE
            )
        if record.value is None:
            node[record.path[-1]] = None
        else:
            value, rtype = typed_for_encoding(record.value, model_type(lookup, record.path), record.path)
            node[record.path[-1]] = to_cbor_value(value, rtype)
    # Fold the single-child chain from the root into one array key, as Anjay does: {[3303, 0]: {...}}.
    chain: list[int] = []
    body: object = tree
    while type(body) is dict and len(body) == 1:
        ((key, body),) = body.items()
        chain.append(key)
    if not chain:
        return _cbor.dumps(tree)
    return _cbor.dumps({chain[0] if len(chain) == 1 else tuple(chain): body})
