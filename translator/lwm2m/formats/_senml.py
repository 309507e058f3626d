"""SenML (RFC 8428) resolution and building, shared by SenML JSON (110) and SenML CBOR (112).

Names are joined literally (`bn` + `n`), which covers both splits real clients use — Wakaama
`{"bn":"/3/0/","n":"0"}`, Anjay `{"bn":"/3303/0","n":"/5700"}` — and records without any `bn`.
Base values persist until the next record that sets them. A resolved time below 2**28 is relative to
now (RFC 8428 section 4.5.3); records with neither `bt` nor `t` have no time (None).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from translator.lwm2m.errors import ErrorKind, Lwm2mFormatError
from translator.lwm2m.formats._cbor import compact_float
from translator.lwm2m.formats._values import (
    RELATIVE_TIME_LIMIT,
    bad,
    check_finite,
    coerce,
    model_type,
    resolve_time,
    seconds_from_time,
    typed_for_encoding,
)
from translator.lwm2m.model import ResourceType
from translator.lwm2m.paths import MAX_ID, Path, common_prefix
from translator.lwm2m.records import ObjLink, Record, Value
from translator.lwm2m.registry import ResourceLookup

Label = str | int


class Labels(NamedTuple):
    bn: Label
    bt: Label
    bv: Label
    n: Label
    v: Label
    vs: Label
    vb: Label
    vd: Label
    vlo: Label
    t: Label
    known: frozenset[Label]  # every label understood (including ignored ones: units, sums, version)


JSON_LABELS = Labels(
    "bn", "bt", "bv", "n", "v", "vs", "vb", "vd", "vlo", "t",
    frozenset({"bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "vlo", "s", "t", "ut"}),
)  # fmt: skip
# RFC 8428 table 4; LwM2M adds "vlo" as a text label (Anjay writes it so in CBOR too).
CBOR_LABELS = Labels(
    -2, -3, -5, 0, 2, 3, 4, 8, "vlo", 6,
    frozenset({-1, -2, -3, -4, -5, -6, 0, 1, 2, 3, 4, 5, 6, 7, 8, "vlo"}),
)  # fmt: skip


def _number(x: object) -> bool:
    t = type(x)
    return t is int or t is float


def _b64url(text: str, path: Path) -> bytes:
    # RFC 8428 says base64url without padding; accept padding and the standard alphabet too.
    cleaned = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise Lwm2mFormatError(f"{path}: invalid base64url in vd") from None


class _Names:
    """Resolves `bn` + `n` to paths; the base name is parsed once, not once per record."""

    __slots__ = ("base", "cache", "prefix", "slash_in_base")

    def __init__(self) -> None:
        self.cache: dict[str, Path] = {}
        self.set_base("")

    def set_base(self, base: str) -> None:
        self.base = base
        self.slash_in_base = base.endswith("/")
        try:
            self.prefix: tuple[int, ...] | None = Path.parse(base) if base else ()
        except Lwm2mFormatError:
            self.prefix = None  # only the joined names will tell whether they are paths

    def path(self, n: str | None) -> Path:
        if n is None:
            name = self.base
        else:
            prefix = self.prefix
            # The common case: n is one more segment after the base ("5700" or "/5700").
            seg = n if self.slash_in_base else (n[1:] if n[:1] == "/" else "")
            if prefix is not None and seg.isdigit() and seg.isascii() and len(seg) <= 5 and len(prefix) < 4:
                value = int(seg)
                if value <= MAX_ID:
                    return Path.of((*prefix, value))
            name = self.base + n
        path = self.cache.get(name)
        if path is None:
            if not name:
                raise Lwm2mFormatError("SenML: a record has no name")
            path = Path.parse(name)
            self.cache[name] = path
        return path


def _value(rec: dict[Label, object], labels: Labels, bv: float | None, path: Path) -> tuple[object, int]:
    """The record's value (raw) and how many value fields it has."""
    value: object = None
    kinds = 0
    if (x := rec.get(labels.v)) is not None:
        if not _number(x):
            raise Lwm2mFormatError(f"{path}: v is not a number")
        value = x + bv if bv is not None else x  # type: ignore[operator]
        kinds += 1
    if (x := rec.get(labels.vs)) is not None:
        if type(x) is not str:
            raise Lwm2mFormatError(f"{path}: vs is not a string")
        value = x
        kinds += 1
    if (x := rec.get(labels.vb)) is not None:
        if type(x) is not bool:
            raise Lwm2mFormatError(f"{path}: vb is not a boolean")
        value = x
        kinds += 1
    if (x := rec.get(labels.vd)) is not None:
        if type(x) is str:
            value = _b64url(x, path)
        elif type(x) is bytes:
            value = x
        else:
            raise Lwm2mFormatError(f"{path}: vd is not data")
        kinds += 1
    if (x := rec.get(labels.vlo)) is not None:
        if type(x) is not str:
            raise Lwm2mFormatError(f"{path}: vlo is not a string")
        value = ObjLink.parse(x)
        kinds += 1
    if kinds > 1:
        raise Lwm2mFormatError(f"{path}: a record has more than one value")
    return value, kinds


def _finite_number(x: object, what: str) -> float:
    if (type(x) is not int and type(x) is not float) or not math.isfinite(x):
        raise Lwm2mFormatError(f"SenML: {what} is not a finite number")
    return x


def resolve(  # noqa: PLR0915 - one flat loop on purpose: the per-message hot path
    pack: object, labels: Labels, fmt: str, lookup: ResourceLookup | None, now: float | None
) -> list[Record]:
    if type(pack) is not list:
        raise Lwm2mFormatError(f"{fmt}: payload is not an array of records")
    l_bn, l_bt, l_bv, l_n, l_v, _, _, _, _, l_t, known = labels
    names = _Names()
    bt: float | None = None
    base_time: float | None = None  # bt resolved to absolute time
    bv: float | None = None
    out: list[Record] = []
    for rec in pack:
        if type(rec) is not dict:
            raise Lwm2mFormatError(f"{fmt}: a record is not a map")
        get = rec.get
        found = 0
        if (x := get(l_bn)) is not None:
            if type(x) is not str:
                raise Lwm2mFormatError(f"{fmt}: bn is not a string")
            names.set_base(x)
            found += 1
        if (x := get(l_bt)) is not None:
            bt = _finite_number(x, "bt")
            base_time = resolve_time(float(bt), now)
            found += 1
        if (x := get(l_bv)) is not None:
            if not _number(x):
                raise Lwm2mFormatError(f"{fmt}: bv is not a number")
            bv = x
            found += 1
        n = get(l_n)
        if n is not None:
            if type(n) is not str:
                raise Lwm2mFormatError(f"{fmt}: n is not a string")
            found += 1
        path = names.path(n)
        if (t := get(l_t)) is not None:
            offset = _finite_number(t, "t")
            time: float | None = resolve_time(float(offset + bt if bt is not None else offset), now)
            found += 1
        else:
            time = base_time
        value = get(l_v)
        # Fast path: a numeric value and no field left unread (no other value field, nothing unknown).
        if value is None or found + 1 != len(rec) or (type(value) is not float and type(value) is not int):
            value, kinds = _value(rec, labels, bv, path)
            if found + kinds < len(rec):
                for key in rec:
                    if key not in known and type(key) is str and key.endswith("_"):
                        raise Lwm2mFormatError(f"{fmt}: must-understand field {key!r} is not supported")
        elif bv is not None:
            value += bv
        if value is None:
            out.append(Record(path, None, time))
        elif len(path) < 3:
            raise Lwm2mFormatError(f"{fmt}: value for {path}, which is not a resource")
        else:
            model = None if lookup is None else lookup.resource_model(path[0], path[2])
            out.append(Record(path, coerce(value, None if model is None else model.type, path), time))
    return out


def name_split(records: Sequence[Record], base_path: Path | None) -> tuple[str | None, list[str]]:
    """Choose `bn` and the per-record names (Wakaama style: `bn` ends with '/')."""
    paths = [r.path for r in records]
    if base_path is None:
        base = common_prefix(paths)
    else:
        base = base_path
        for p in paths:
            if not p.startswith(base):
                raise Lwm2mFormatError(f"{p} is not under {base}", ErrorKind.NOT_ACCEPTABLE)
    if base and base in paths:
        base = base.parent
    if not base:
        return None, [str(p) for p in paths]
    depth = len(base)
    return f"{base}/", ["/".join(map(str, p[depth:])) for p in paths]


def check_absolute_time(time: float, path: Path, fmt: str) -> float:
    check_finite(time, path, fmt)
    if time < RELATIVE_TIME_LIMIT:
        raise Lwm2mFormatError(
            f"{path}: absolute time {time} is below 2**28 and would read as relative",
            ErrorKind.NOT_ACCEPTABLE,
        )
    return time


def build(
    records: Sequence[Record],
    base_path: Path | None,
    labels: Labels,
    lookup: ResourceLookup | None,
    *,
    fmt: str,
    binary: bool,
) -> list[dict[Label, object]]:
    """SenML records as maps, ready for json/cbor2. `binary`: CBOR (bytes, float32) vs JSON (base64url)."""
    bn, names = name_split(records, base_path)
    pack: list[dict[Label, object]] = []
    for i, (record, name) in enumerate(zip(records, names, strict=True)):
        entry: dict[Label, object] = {}
        if i == 0 and bn is not None:
            entry[labels.bn] = bn
        if name:
            entry[labels.n] = name
        if record.value is not None:
            if len(record.path) < 3:
                raise Lwm2mFormatError(
                    f"{record.path}: only resources carry values", ErrorKind.NOT_ACCEPTABLE
                )
            value, rtype = typed_for_encoding(record.value, model_type(lookup, record.path), record.path)
            label, encoded = _senml_value(value, rtype, record.path, labels, fmt=fmt, binary=binary)
            entry[label] = encoded
        if record.time is not None:
            entry[labels.t] = check_absolute_time(record.time, record.path, fmt)
        pack.append(entry)
    return pack


def _senml_value(
    value: Value, rtype: ResourceType, path: Path, labels: Labels, *, fmt: str, binary: bool
) -> tuple[Label, object]:
    if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
        return labels.vs, value
    if rtype is ResourceType.BOOLEAN:
        return labels.vb, value
    if isinstance(value, bytes):
        return labels.vd, value if binary else base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")
    if isinstance(value, ObjLink):
        return labels.vlo, str(value)
    if isinstance(value, float):
        if binary:
            return labels.v, compact_float(value)
        check_finite(value, path, fmt)
        return labels.v, value
    if isinstance(value, datetime):
        return labels.v, seconds_from_time(value)
    if isinstance(value, int):
        return labels.v, value
    raise bad(path, value, rtype)
