"""A small hand-written CoAP (RFC 7252) message parser and encoder for the hot path. Pure.

It understands just enough to answer telemetry (POST /dp, POST /ingest, notifications) without aiocoap:
the header, the token, the options the hot path looks at, and the payload. It is also the gate in front of
aiocoap: a message it cannot hand on (a message format error, an unrecognized or malformed critical option,
a string option that is not UTF-8 — aiocoap raises on those) carries a `fault`, and `gate.refusal` answers it.
Block-wise transfers are flagged `special`: aiocoap reassembles them.
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
OPT_IF_NONE_MATCH: Final = 5
OPT_URI_PATH: Final = 11
OPT_CONTENT_FORMAT: Final = 12
OPT_MAX_AGE: Final = 14
OPT_URI_QUERY: Final = 15
OPT_ACCEPT: Final = 17
OPT_LOCATION_QUERY: Final = 20
OPT_BLOCK2: Final = 23
OPT_BLOCK1: Final = 27
OPT_SIZE2: Final = 28
OPT_PROXY_URI: Final = 35
OPT_PROXY_SCHEME: Final = 39
OPT_SIZE1: Final = 60

# Faults (`Datagram.fault`): what makes a message one the server must refuse rather than process.
FORMAT_ERROR: Final = 1  # RFC 7252 §3: reject (RST) a CON/NON, silently ignore an ACK/RST
BAD_OPTION: Final = 2  # an unrecognized or malformed critical option (§5.4.1, §5.4.3): 4.02 or reject
PROXY: Final = 3  # Proxy-Uri / Proxy-Scheme: this server is no forward-proxy (§5.7.2): 5.05

# Options whose presence means "not a simple single-datagram exchange": leave those to aiocoap.
_BLOCKWISE = frozenset({OPT_BLOCK1, OPT_BLOCK2})
# Critical options (odd numbers) the server understands or may safely ignore; any other is a fault.
_KNOWN_CRITICAL = frozenset(
    {
        OPT_IF_MATCH,
        OPT_URI_HOST,
        OPT_IF_NONE_MATCH,
        OPT_URI_PORT,
        OPT_URI_PATH,
        OPT_URI_QUERY,
        OPT_ACCEPT,
        OPT_BLOCK2,
        OPT_BLOCK1,
    }
)
_PROXY = frozenset({OPT_PROXY_URI, OPT_PROXY_SCHEME})
# String options the hot path does not read: aiocoap decodes them as UTF-8 and raises if they are not.
_OTHER_STRINGS = frozenset({OPT_URI_HOST, OPT_LOCATION_PATH, OPT_LOCATION_QUERY, *_PROXY})


class Datagram:
    """A parsed CoAP message (only the fields the hot path uses)."""

    __slots__ = (
        "accept",
        "bad_option",
        "code",
        "content_format",
        "fault",
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
        # True when the message is part of a block-wise transfer: aiocoap reassembles it.
        self.special = False
        self.fault = 0  # FORMAT_ERROR, BAD_OPTION, PROXY; 0 for a message that may be processed
        self.bad_option = 0  # the option number behind BAD_OPTION / PROXY


def _fault(msg: Datagram, fault: int, option: int = 0) -> Datagram:
    msg.fault = fault
    msg.bad_option = option
    return msg


def _uint(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def parse(data: bytes) -> Datagram | None:  # noqa: PLR0915 - one flat loop is the fast shape
    """Parse one datagram; None when it has no CoAP header to answer (too short, another version).

    A message with a header but a fault (see `Datagram.fault`) is returned with the fault set and the
    fields read so far; the first fault found wins.
    """
    n = len(data)
    if n < 4:
        return None
    b0 = data[0]
    if b0 >> 6 != 1:
        return None  # §3: messages with unknown version numbers MUST be silently ignored
    tkl = b0 & 0x0F
    code = data[1]
    msg = Datagram((b0 >> 4) & 3, code, (data[2] << 8) | data[3], data[4 : 4 + tkl])
    if tkl > 8 or 4 + tkl > n:
        return _fault(msg, FORMAT_ERROR)  # TKL 9-15 reserved; a token shorter than its length
    if code == 0:
        # §4.1: an Empty message has no token and nothing after the Message ID
        return _fault(msg, FORMAT_ERROR) if n > 4 else msg
    if (code >> 5) in (1, 6, 7) or (code < 32 and msg.mtype >= ACK) or msg.mtype == RST:
        return _fault(msg, FORMAT_ERROR)  # reserved class; a request in an ACK; a RST that is not Empty
    i = 4 + tkl
    number = 0
    while i < n:
        byte = data[i]
        if byte == 0xFF:
            if i + 1 == n:
                return _fault(msg, FORMAT_ERROR)  # a payload marker must be followed by a payload
            msg.payload = data[i + 1 :]
            break
        i += 1
        delta = byte >> 4
        length = byte & 0x0F
        if delta == 13:
            if i >= n:
                return _fault(msg, FORMAT_ERROR)
            delta = data[i] + 13
            i += 1
        elif delta == 14:
            if i + 1 >= n:
                return _fault(msg, FORMAT_ERROR)
            delta = ((data[i] << 8) | data[i + 1]) + 269
            i += 2
        elif delta == 15:
            return _fault(msg, FORMAT_ERROR)
        if length == 13:
            if i >= n:
                return _fault(msg, FORMAT_ERROR)
            length = data[i] + 13
            i += 1
        elif length == 14:
            if i + 1 >= n:
                return _fault(msg, FORMAT_ERROR)
            length = ((data[i] << 8) | data[i + 1]) + 269
            i += 2
        elif length == 15:
            return _fault(msg, FORMAT_ERROR)
        number += delta
        end = i + length
        if end > n:
            return _fault(msg, FORMAT_ERROR)
        value = data[i:end]
        i = end
        if number == OPT_URI_PATH:
            try:
                msg.uri_path.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                return _fault(msg, BAD_OPTION, number)  # §5.4.3: a malformed critical option
        elif number == OPT_URI_QUERY:
            try:
                msg.uri_query.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                return _fault(msg, BAD_OPTION, number)
        elif number == OPT_CONTENT_FORMAT:
            msg.content_format = _uint(value)
        elif number == OPT_OBSERVE:
            msg.observe = _uint(value)
        elif number == OPT_ACCEPT:
            msg.accept = _uint(value)
        elif number == OPT_MAX_AGE:
            msg.max_age = _uint(value)
        elif number in _BLOCKWISE:
            msg.special = True
        elif number & 1 and number not in _KNOWN_CRITICAL:
            return _fault(msg, PROXY if number in _PROXY and code < 32 else BAD_OPTION, number)
        if number in _OTHER_STRINGS:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                # An elective option in a bad format should be ignored (§5.4.3), but aiocoap cannot
                # decode the message at all: refused like a critical one.
                return _fault(msg, BAD_OPTION, number)
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
