"""Client-side MQTT 3.1.1 codec, sans I/O: just what an IoT Hub device session sends and receives.

Hand-written (about a hundred lines) rather than taken from a library because it sits on the telemetry hot
path — one PUBLISH encode and one PUBACK decode per message — where general-purpose codecs cost 5–10× more
(see ../shared/PERFORMANCE.md). It is independent of the emulator's codec (amqtt): each checks the other.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

CONNACK_MESSAGES = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"
_UINT16 = struct.Struct("!H")


class MqttProtocolError(Exception):
    """The server sent bytes that are not MQTT 3.1.1 a client should receive."""


@dataclass(frozen=True, slots=True)
class ConnAck:
    session_present: bool
    return_code: int


@dataclass(frozen=True, slots=True)
class SubAck:
    packet_id: int
    return_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PubAck:
    packet_id: int


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    packet_id: int | None


@dataclass(frozen=True, slots=True)
class PingResp:
    pass


Incoming = ConnAck | SubAck | PubAck | Message | PingResp


def _remaining_length(length: int) -> bytes:
    if length < 128:
        return bytes((length,))
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    if len(data) > 0xFFFF:
        raise ValueError("MQTT strings are at most 65535 bytes")
    return _UINT16.pack(len(data)) + data


def encode_connect(
    client_id: str, username: str | None, password: str | None, *, keep_alive: int, clean_session: bool
) -> bytes:
    flags = 0x02 if clean_session else 0
    payload = _string(client_id)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
    if password is not None:
        flags |= 0x40
        payload += _string(password)
    body = b"\x00\x04MQTT\x04" + bytes((flags,)) + _UINT16.pack(keep_alive) + payload
    return b"\x10" + _remaining_length(len(body)) + body


def encode_publish(topic: bytes, payload: bytes, qos: int, packet_id: int | None) -> bytes:
    """`topic` is already UTF-8 encoded, so a caller can cache it."""
    header = _UINT16.pack(len(topic)) + topic
    if qos:
        assert packet_id is not None
        header += _UINT16.pack(packet_id)
    return bytes((0x30 | (qos << 1),)) + _remaining_length(len(header) + len(payload)) + header + payload


def encode_subscribe(packet_id: int, filters: Iterable[tuple[str, int]]) -> bytes:
    body = _UINT16.pack(packet_id) + b"".join(_string(topic) + bytes((qos,)) for topic, qos in filters)
    return b"\x82" + _remaining_length(len(body)) + body


def encode_puback(packet_id: int) -> bytes:
    return b"\x40\x02" + _UINT16.pack(packet_id)


def encode_pingreq() -> bytes:
    return _PINGREQ


def encode_disconnect() -> bytes:
    return _DISCONNECT


class Decoder:
    """Splits the server's byte stream into packets."""

    __slots__ = ("_buffer", "_max_packet")

    def __init__(self, max_packet: int = 1024 * 1024) -> None:
        self._buffer = b""
        self._max_packet = max_packet

    def feed(self, data: bytes | memoryview) -> list[Incoming]:
        buffer = self._buffer + bytes(data) if self._buffer else bytes(data)
        packets: list[Incoming] = []
        position = 0
        end = len(buffer)
        while end - position >= 2:
            first = buffer[position]
            length = 0
            shift = 0
            index = position + 1
            while True:
                if index >= end:
                    self._buffer = buffer[position:]
                    return packets
                byte = buffer[index]
                length |= (byte & 0x7F) << shift
                index += 1
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise MqttProtocolError("remaining length longer than four bytes")
            if length > self._max_packet:
                raise MqttProtocolError(f"packet of {length} bytes is over the {self._max_packet} limit")
            if end - index < length:
                break
            packets.append(_decode(first, buffer[index : index + length]))
            position = index + length
        self._buffer = buffer[position:] if position < end else b""
        return packets


def _decode(first: int, body: bytes) -> Incoming:
    kind = first >> 4
    if kind == 4 and len(body) == 2:  # PUBACK, the hot path
        return PubAck(_UINT16.unpack(body)[0])
    if kind == 3:
        qos = (first >> 1) & 0x03
        if len(body) < 2:
            raise MqttProtocolError("PUBLISH too short")
        topic_length = _UINT16.unpack_from(body)[0]
        offset = 2 + topic_length
        packet_id = None
        if qos:
            if len(body) < offset + 2:
                raise MqttProtocolError("PUBLISH without a packet id")
            packet_id = _UINT16.unpack_from(body, offset)[0]
            offset += 2
        if offset > len(body):
            raise MqttProtocolError("PUBLISH topic longer than the packet")
        try:
            topic = body[2 : 2 + topic_length].decode()
        except UnicodeDecodeError:
            raise MqttProtocolError("PUBLISH topic is not UTF-8") from None
        return Message(topic, body[offset:], qos, packet_id)
    if kind == 2 and len(body) == 2:
        return ConnAck(bool(body[0] & 0x01), body[1])
    if kind == 9 and len(body) >= 3:
        return SubAck(_UINT16.unpack_from(body)[0], tuple(body[2:]))
    if kind == 13 and not body:
        return PingResp()
    if kind == 11 and len(body) == 2:  # UNSUBACK: we never unsubscribe; treat like a ping
        return PingResp()
    raise MqttProtocolError(f"unexpected packet type {kind} with {len(body)} bytes")
