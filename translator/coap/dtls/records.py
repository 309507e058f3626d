"""What the DTLS record layer shows in the clear (RFC 6347 §4.1, §4.2.2): pure parsing, no state.

The session table needs three facts before it hands bytes to OpenSSL: whether a datagram opens a handshake
(a ClientHello in epoch 0), the PSK identity of a ClientKeyExchange (so the key can be looked up
asynchronously before OpenSSL asks for it), and where records end (to pack a flight into datagrams).
"""

from __future__ import annotations

from collections.abc import Iterator

HEADER = 13  # type(1) version(2) epoch(2) sequence(6) length(2)
HANDSHAKE_HEADER = 12  # msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3)
CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
CLIENT_HELLO = 1
SERVER_HELLO = 2
CLIENT_KEY_EXCHANGE = 16

# Cipher suites whose ClientKeyExchange starts with a PSK identity (RFC 4279 §2, RFC 6655, RFC 5487).
PSK_SUITES = frozenset({0xC0A8, 0x00AE, 0x00A8, 0xC0A4, 0x008C})


def records(data: bytes) -> Iterator[tuple[int, int, memoryview]]:
    """(content type, epoch, fragment) of each whole record; stops at the first truncated one."""
    view = memoryview(data)
    offset = 0
    while offset + HEADER <= len(view):
        kind = view[offset]
        epoch = int.from_bytes(view[offset + 3 : offset + 5], "big")
        length = int.from_bytes(view[offset + 11 : offset + 13], "big")
        end = offset + HEADER + length
        if end > len(view):
            return
        yield kind, epoch, view[offset + HEADER : end]
        offset = end


def split(data: bytes) -> list[bytes]:
    """The records of a datagram (or of what OpenSSL wrote into its memory BIO), each whole."""
    out: list[bytes] = []
    view = memoryview(data)
    offset = 0
    while offset + HEADER <= len(view):
        end = offset + HEADER + int.from_bytes(view[offset + 11 : offset + 13], "big")
        out.append(bytes(view[offset:end]))
        offset = end
    return out


def pack(data: bytes, mtu: int) -> list[bytes]:
    """Records grouped into datagrams of at most `mtu` bytes (a record bigger than that goes alone)."""
    if len(data) <= mtu:
        return [data]
    datagrams: list[bytes] = []
    current = b""
    for record in split(data):
        if current and len(current) + len(record) > mtu:
            datagrams.append(current)
            current = b""
        current += record
    if current:
        datagrams.append(current)
    return datagrams


def _handshake_type(kind: int, epoch: int, fragment: memoryview) -> int | None:
    if kind != HANDSHAKE or epoch != 0 or len(fragment) < HANDSHAKE_HEADER:
        return None
    return fragment[0]


def is_client_hello(data: bytes) -> bool:
    """The datagram's first record is a ClientHello in epoch 0: someone starts (or restarts) a handshake.
    Asked of every datagram, so it reads the bytes directly."""
    return (
        len(data) >= HEADER + HANDSHAKE_HEADER
        and data[0] == HANDSHAKE
        and data[3] == 0
        and data[4] == 0
        and data[HEADER] == CLIENT_HELLO
    )


def server_suite(data: bytes) -> int | None:
    """The cipher suite of the ServerHello among these records (what OpenSSL just chose), if any."""
    for kind, epoch, fragment in records(data):
        if _handshake_type(kind, epoch, fragment) != SERVER_HELLO:
            continue
        body = fragment[HANDSHAKE_HEADER:]
        at = 2 + 32  # server_version, random
        if len(body) < at + 1:
            return None
        at += 1 + body[at]  # session_id
        if len(body) < at + 2:
            return None
        return int.from_bytes(body[at : at + 2], "big")
    return None


def psk_identity(data: bytes) -> bytes | None:
    """The PSK identity of a whole (unfragmented) ClientKeyExchange in this datagram (RFC 4279 §2)."""
    for kind, epoch, fragment in records(data):
        if _handshake_type(kind, epoch, fragment) != CLIENT_KEY_EXCHANGE:
            continue
        length = int.from_bytes(fragment[1:4], "big")
        offset = int.from_bytes(fragment[6:9], "big")
        if offset != 0 or int.from_bytes(fragment[9:12], "big") != length:
            return None  # fragmented: OpenSSL reassembles it and the callback finds no key
        body = fragment[HANDSHAKE_HEADER : HANDSHAKE_HEADER + length]
        if len(body) < 2:
            return None
        size = int.from_bytes(body[:2], "big")
        if len(body) < 2 + size:
            return None
        return bytes(body[2 : 2 + size])
    return None
