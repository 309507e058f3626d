"""CoRE Link Format (RFC 6690): registration payloads and Discover answers.

    </>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3/0>,</3303/0>
    </3/0>,</3/0/6>;dim=2,</3/0/9>;pmin=1;pmax=5

Parameters keep their order and may repeat; a parameter without `=` (e.g. `obs`) has the value None.
Quoted values are unquoted on parsing (`ver="1.1"` and `ver=1.1` read the same).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from translator.lwm2m.errors import Lwm2mFormatError
from translator.lwm2m.paths import Path

_PTOKEN_EXTRA = set("!#$%&'()*+-./:<=>?@[]^_`{|}~")
_PARMNAME_EXTRA = set("!#$&+-.^_`|~")
_WS = " \t\r\n"
# Attributes RFC 6690 and LwM2M write as quoted strings even when a token would do.
_ALWAYS_QUOTED = frozenset({"rt", "if", "anchor", "title", "rel", "rev"})
# A registration lists every object instance; thousands of links is already absurd.
MAX_LINKS = 10_000


def _is_ptoken(value: str) -> bool:
    return bool(value) and all((c.isascii() and c.isalnum()) or c in _PTOKEN_EXTRA for c in value)


def _is_parmname_char(c: str) -> bool:
    return (c.isascii() and c.isalnum()) or c in _PARMNAME_EXTRA


@dataclass(frozen=True, slots=True)
class Link:
    target: str
    params: tuple[tuple[str, str | None], ...] = ()

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.params)

    def get(self, name: str) -> str | None:
        """The first value of parameter `name` (None when absent or given without a value)."""
        for k, v in self.params:
            if k == name:
                return v
        return None

    def get_int(self, name: str) -> int | None:
        value = self.get(name)
        if value is None or not (value.lstrip("-").isdigit() and value.isascii()) or len(value) > 20:
            return None
        return int(value)

    def get_float(self, name: str) -> float | None:
        value = self.get(name)
        if value is None or len(value) > 64:
            return None
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None

    @property
    def attributes(self) -> dict[str, str | None]:
        """Parameters as a dict (the first occurrence wins)."""
        out: dict[str, str | None] = {}
        for k, v in self.params:
            out.setdefault(k, v)
        return out

    @property
    def path(self) -> Path | None:
        """The target as an LwM2M path, or None when it is not one."""
        try:
            return Path.parse(self.target)
        except Lwm2mFormatError:
            return None

    def __str__(self) -> str:
        parts = [f"<{self.target}>"]
        for name, value in self.params:
            if value is None:
                parts.append(f";{name}")
            elif name in _ALWAYS_QUOTED or not _is_ptoken(value):
                escaped = value.replace("\\", "\\\\").replace('"', '\\"')
                parts.append(f';{name}="{escaped}"')
            else:
                parts.append(f";{name}={value}")
        return "".join(parts)


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    return i


def _quoted(s: str, i: int) -> tuple[str, int]:
    """Parse a quoted-string starting at the opening quote; returns (value, index after it)."""
    out: list[str] = []
    i += 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(s[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise Lwm2mFormatError("link format: unterminated quoted string")


def _params(s: str, i: int) -> tuple[list[tuple[str, str | None]], int]:
    """Parse `;name[=value]` parameters from `i`; returns them and the index after them."""
    n = len(s)
    params: list[tuple[str, str | None]] = []
    while i < n and s[i] == ";":
        i = _skip_ws(s, i + 1)
        start = i
        while i < n and _is_parmname_char(s[i]):
            i += 1
        name = s[start:i]
        if not name:
            raise Lwm2mFormatError(f"link format: missing parameter name at offset {start}")
        i = _skip_ws(s, i)
        value: str | None = None
        if i < n and s[i] == "=":
            i = _skip_ws(s, i + 1)
            if i < n and s[i] == '"':
                value, i = _quoted(s, i)
            else:
                start = i
                while i < n and s[i] not in ";," and s[i] not in _WS:
                    i += 1
                value = s[start:i]
                if not value:
                    raise Lwm2mFormatError(f"link format: empty value for {name!r}")
            i = _skip_ws(s, i)
        params.append((name, value))
    return params, i


def parse_links(payload: str | bytes) -> list[Link]:
    """Parse a link-format document; raises `Lwm2mFormatError` (4.00) when malformed."""
    if isinstance(payload, bytes | bytearray):
        try:
            s = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise Lwm2mFormatError("link format: payload is not UTF-8") from None
    else:
        s = payload
    n = len(s)
    links: list[Link] = []
    i = _skip_ws(s, 0)
    while i < n:
        if s[i] != "<":
            raise Lwm2mFormatError(f"link format: expected '<' at offset {i}")
        end = s.find(">", i + 1)
        if end < 0:
            raise Lwm2mFormatError("link format: unterminated '<'")
        target = s[i + 1 : end]
        i = _skip_ws(s, end + 1)
        params, i = _params(s, i)
        links.append(Link(target, tuple(params)))
        if len(links) > MAX_LINKS:
            raise Lwm2mFormatError(f"link format: more than {MAX_LINKS} links")
        if i < n:
            if s[i] != ",":
                raise Lwm2mFormatError(f"link format: expected ',' at offset {i}")
            i = _skip_ws(s, i + 1)
            if i >= n:
                raise Lwm2mFormatError("link format: trailing ','")
    return links


def format_links(links: Iterable[Link]) -> str:
    return ",".join(map(str, links))


@dataclass(frozen=True, slots=True)
class RegisteredObjects:
    """What a Register/Update payload says about a client.

    `objects`: every object id mentioned, with its `ver` (None when not given: version 1.0 per the
    specification, but a registry lookup with None picks the newest model known). `instances`: the
    object instances present. `content_formats`: the `ct` hint of the `rt="oma.lwm2m"` link.
    `root`: the alternate path objects live under (`/` by default).
    """

    objects: Mapping[int, str | None]
    instances: tuple[Path, ...]
    content_formats: tuple[int, ...]
    root: str
    links: tuple[Link, ...]


def _is_lwm2m_root(link: Link) -> bool:
    rt = link.get("rt")
    return rt is not None and "oma.lwm2m" in rt.split()


def parse_registration(payload: str | bytes) -> RegisteredObjects:
    links = parse_links(payload)
    root = "/"
    content_formats: tuple[int, ...] = ()
    for link in links:
        if _is_lwm2m_root(link):
            root = link.target.rstrip("/") or "/"
            ct = link.get("ct")
            if ct is not None:
                content_formats = tuple(
                    int(tok) for tok in ct.split() if tok.isascii() and tok.isdigit() and len(tok) <= 5
                )
            break
    prefix = "" if root == "/" else root
    objects: dict[int, str | None] = {}
    instances: list[Path] = []
    for link in links:
        if _is_lwm2m_root(link) or not link.target.startswith(prefix + "/"):
            continue
        try:
            path = Path.parse(link.target[len(prefix) :])
        except Lwm2mFormatError:
            continue  # not an object link; registrations may carry others
        if not path:
            continue
        oid = path[0]
        if len(path) == 1:
            objects[oid] = link.get("ver") or objects.get(oid)
        else:
            objects.setdefault(oid, None)
            if len(path) == 2:
                instances.append(path)
    return RegisteredObjects(
        objects=objects,
        instances=tuple(instances),
        content_formats=content_formats,
        root=root,
        links=tuple(links),
    )
