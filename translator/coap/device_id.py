"""LwM2M endpoint name → IoT Central device id, and back. Pure.

The id must be at once a DPS registration id, an IoT Hub device id and an IoT Central device id. The safe
intersection of what Microsoft documents for the three (see `translator/iotc/protocol/ids.py` for the pages)
is:
1 to 128 characters of lowercase `a-z`, digits and `- . _ :`, beginning and ending with a letter or digit.
DPS compares registration ids case-insensitively, so `Dev1` and `dev1` must not both become `dev1`.

The rule (deterministic, injective, and readable wherever the name already is a valid id):

1. A name that already is a valid id and does not begin with `x--` is its own id
   (`urn:imei:359000000000001`, `wakaama-ep`, `node_7`).
2. Any other name becomes `x--` followed by its escaped form. Lowercase letters, digits and `- . :` are
   kept; `_` starts an escape: `__` is `_`, `_` + a lowercase letter is that letter in uppercase, `_` + three
   decimal digits is one byte of the UTF-8 name (`Dev 1` → `x--_dev_0321`, `ä` → `x--_195_164`). A name's
   last character is always written as an escape when it would otherwise end the id in a special character
   (`dev.` → `x--dev_046`). The escaped form decodes back to the name, and `x--` marks it, so no rule-2 id
   equals a rule-1 id.
3. An id longer than 128 characters becomes `x--`, as many whole escapes of the name as fit in 71
   characters, `_-`, and 52 base32 characters (lowercase, 260 bits) of the name's SHA-256. `_-` is no escape,
   so such an id never decodes as a rule-2 id; two long names share an id only if SHA-256 collides.
4. An empty name, or one over 1024 bytes, is refused (4.00).

`endpoint_for` inverts rules 1 and 2 and answers None for rule-3 ids, which are one-way.
"""

from __future__ import annotations

import base64
import hashlib

from translator.coap.errors import BadRequest

MAX_DEVICE_ID = 128
MAX_ENDPOINT_BYTES = 1024
PREFIX = "x--"
"""Marks an escaped (or hashed) id. Rare as the start of a real endpoint name; such a name is escaped too."""

_HASH_MARK = "_-"
_DIGEST_CHARS = 52
_HASHED_ROOM = MAX_DEVICE_ID - len(PREFIX) - len(_HASH_MARK) - _DIGEST_CHARS
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_VALID = _ALNUM | frozenset("-._:")
_KEPT_BYTES = frozenset(ord(c) for c in _ALNUM | frozenset("-.:"))
_UPPER = frozenset(range(ord("A"), ord("Z") + 1))


def _is_plain(name: str) -> bool:
    """A name that is a valid id as it is (rule 1)."""
    return (
        len(name) <= MAX_DEVICE_ID
        and name[0] in _ALNUM
        and name[-1] in _ALNUM
        and all(c in _VALID for c in name)
        and not name.startswith(PREFIX)
    )


def _escape(byte: int) -> str:
    if byte == ord("_"):
        return "__"
    if byte in _UPPER:
        return "_" + chr(byte).lower()
    return f"_{byte:03d}"


def _tokens(raw: bytes) -> list[str]:
    """The escaped form of `raw`, one token per byte (rule 2)."""
    tokens = [chr(b) if b in _KEPT_BYTES else _escape(b) for b in raw]
    if tokens[-1][-1] not in _ALNUM:
        tokens[-1] = f"_{raw[-1]:03d}"
    return tokens


def device_id_for(endpoint: str) -> str:
    """The IoT Central device id of an LwM2M endpoint name (see the module docstring for the rule)."""
    if not endpoint:
        raise BadRequest("empty endpoint name")
    raw = endpoint.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_ENDPOINT_BYTES:
        raise BadRequest(f"endpoint name longer than {MAX_ENDPOINT_BYTES} bytes")
    if _is_plain(endpoint):
        return endpoint
    tokens = _tokens(raw)
    escaped = PREFIX + "".join(tokens)
    if len(escaped) <= MAX_DEVICE_ID:
        return escaped
    kept: list[str] = []
    room = _HASHED_ROOM
    for token in tokens:
        if len(token) > room:
            break
        kept.append(token)
        room -= len(token)
    digest = base64.b32encode(hashlib.sha256(raw).digest()).decode("ascii").lower()[:_DIGEST_CHARS]
    return f"{PREFIX}{''.join(kept)}{_HASH_MARK}{digest}"


def endpoint_for(device_id: str) -> str | None:
    """The endpoint name behind a rule-1 or rule-2 id; None for a hashed (rule-3) or malformed one."""
    if not device_id.startswith(PREFIX):
        return device_id if device_id and _is_plain(device_id) else None
    text = device_id[len(PREFIX) :]
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "_":
            out.append(ord(c))
            i += 1
            continue
        following, digits = text[i + 1 : i + 2], text[i + 1 : i + 4]
        if following == "_":
            out.append(ord("_"))
            i += 2
        elif following in _ALNUM and not following.isdigit():
            out.append(ord(following.upper()))
            i += 2
        elif len(digits) == 3 and all(d in _ALNUM for d in digits) and digits.isdigit() and int(digits) < 256:
            out.append(int(digits))
            i += 4
        else:
            return None  # `_-` (hashed) or not an id this rule made
    try:
        return out.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
