"""A small hand-written CoAP (RFC 7252) message parser and encoder for the hot path. Pure.

It understands just enough to answer telemetry (POST /dp, POST /ingest, notifications) without aiocoap:
the header, the token, the options the hot path looks at, and the payload. Anything it does not fully
understand (block-wise transfer, an unknown critical option, a malformed message) is reported so the
caller hands the datagram to aiocoap instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

CON: Final = 0
NON: Final = 1
ACK: Final = 2
RST: Final = 3

OPT_IF_MATCH: Final = 1
OPT_URI_HOST: Final = 3
OPT_ETAG: Final = 4
OPT_OBSERVE: Final = 6
OPT_URI_PORT: Final = 7
OPT_LOCATION_PATH: Final = 8
OPT_URI_PATH: Final = 11
OPT_CONTENT_FORMAT: Final = 12
OPT_MAX_AGE: Final = 14
OPT_URI_QUERY: Final = 15
OPT_ACCEPT: Final = 17
OPT_BLOCK2: Final = 23
OPT_BLOCK1: Final = 27
OPT_SIZE2: Final = 28
OPT_SIZE1: Final = 60

# Options whose presence means "not a simple single-datagram exchange": leave those to aiocoap.
_BLOCKWISE = frozenset({OPT_BLOCK1, OPT_BLOCK2})
# Critical options (odd numbers) the hot path understands or may safely ignore.
_KNOWN_CRITICAL = frozenset(
    {OPT_IF_MATCH, OPT_URI_HOST, OPT_URI_PORT, OPT_URI_PATH, OPT_URI_QUERY, OPT_ACCEPT}
)


class Datagram:
    """A parsed CoAP message (only the fields the hot path uses)."""

    __slots__ = (
        "accept",
        "code",
        "content_format",
        "max_age",
        "mid",
        "mtype",
        "observe",
        "payload",
        "special",
        "token",
        "uri_path",
        "uri_query",
    )

    def __init__(self, mtype: int, code: int, mid: int, token: bytes) -> None:
        self.mtype = mtype
        self.code = code
        self.mid = mid
        self.token = token
        self.uri_path: list[str] = []
        self.uri_query: list[str] = []
        self.content_format: int | None = None
        self.accept: int | None = None
        self.observe: int | None = None
        self.max_age: int | None = None
        self.payload = b""
        # True when the message uses something the hot path does not handle (block-wise, unknown
        # critical option): give it to aiocoap.
        self.special = False


def _uint(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def parse(data: bytes) -> Datagram | None:  # noqa: PLR0915 - one flat loop is the fast shape
    """Parse one datagram; None when it is not a well-formed CoAP message."""
    n = len(data)
    if n < 4:
        return None
    b0 = data[0]
    if b0 >> 6 != 1:
        return None
    tkl = b0 & 0x0F
    if tkl > 8 or 4 + tkl > n:
        return None
    msg = Datagram((b0 >> 4) & 3, data[1], (data[2] << 8) | data[3], data[4 : 4 + tkl])
    i = 4 + tkl
    number = 0
    while i < n:
        byte = data[i]
        if byte == 0xFF:
            if i + 1 == n:
                return None  # a payload marker must be followed by a payload
            msg.payload = data[i + 1 :]
            break
        i += 1
        delta = byte >> 4
        length = byte & 0x0F
        if delta == 13:
            if i >= n:
                return None
            delta = data[i] + 13
            i += 1
        elif delta == 14:
            if i + 1 >= n:
                return None
            delta = ((data[i] << 8) | data[i + 1]) + 269
            i += 2
        elif delta == 15:
            return None
        if length == 13:
            if i >= n:
                return None
            length = data[i] + 13
            i += 1
        elif length == 14:
            if i + 1 >= n:
                return None
            length = ((data[i] << 8) | data[i + 1]) + 269
            i += 2
        elif length == 15:
            return None
        number += delta
        end = i + length
        if end > n:
            return None
        value = data[i:end]
        i = end
        if number == OPT_URI_PATH:
            try:
                msg.uri_path.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                return None
        elif number == OPT_URI_QUERY:
            try:
                msg.uri_query.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                return None
        elif number == OPT_CONTENT_FORMAT:
            msg.content_format = _uint(value)
        elif number == OPT_OBSERVE:
            msg.observe = _uint(value)
        elif number == OPT_ACCEPT:
            msg.accept = _uint(value)
        elif number == OPT_MAX_AGE:
            msg.max_age = _uint(value)
        elif number in _BLOCKWISE or (number & 1 and number not in _KNOWN_CRITICAL):
            msg.special = True
    return msg


def uint(value: int) -> bytes:
    """An option value as a minimal-length unsigned integer (0 is the empty string)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _ext(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes((value - 13,))
    return 14, (value - 269).to_bytes(2, "big")


def encode(  # noqa: PLR0917 - mirrors the header fields
    mtype: int,
    code: int,
    mid: int,
    token: bytes,
    options: Sequence[tuple[int, bytes]] = (),
    payload: bytes = b"",
) -> bytes:
    """Encode a message; `options` must be sorted by number (repeats in order)."""
    out = bytearray((0x40 | (mtype << 4) | len(token), code, (mid >> 8) & 0xFF, mid & 0xFF))
    out += token
    last = 0
    for number, value in options:
        dnib, dext = _ext(number - last)
        lnib, lext = _ext(len(value))
        out.append((dnib << 4) | lnib)
        out += dext
        out += lext
        out += value
        last = number
    if payload:
        out.append(0xFF)
        out += payload
    return bytes(out)


def path_options(path: Sequence[str]) -> list[tuple[int, bytes]]:
    return [(OPT_URI_PATH, seg.encode()) for seg in path if seg]
