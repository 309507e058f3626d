"""MQTT 3.1.1 framing and packet codec for the emulator, sans I/O.

The wire format itself is amqtt's: its packet classes are a maintained, tested MQTT 3.1.1 implementation.
They decode from an async reader; over an in-memory buffer that reader never suspends, so the coroutines are
driven to completion synchronously here, which keeps this module free of I/O and easy to test.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from amqtt.adapters import BufferReader
from amqtt.errors import CodecError, MQTTError, NoDataError
from amqtt.mqtt.connack import ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.packet import (
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBSCRIBE,
    UNSUBSCRIBE,
    MQTTFixedHeader,
)
from amqtt.mqtt.pingresp import PingRespPacket
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.suback import SubackPacket
from amqtt.mqtt.subscribe import SubscribePacket
from amqtt.mqtt.unsuback import UnsubackPacket
from amqtt.mqtt.unsubscribe import UnsubscribePacket

# MQTT 3.1.1 CONNACK return codes.
CONNACK_ACCEPTED = 0
CONNACK_BAD_PROTOCOL = 1
CONNACK_IDENTIFIER_REJECTED = 2
CONNACK_SERVER_UNAVAILABLE = 3
CONNACK_BAD_CREDENTIALS = 4
CONNACK_NOT_AUTHORIZED = 5
SUBACK_FAILURE = 0x80

_MAX_HEADER = 5  # one type byte and at most four remaining-length bytes


class MalformedPacket(Exception):
    """Bytes that are not a valid MQTT 3.1.1 packet; the connection must be closed."""


class PacketTooLarge(MalformedPacket):
    """A packet whose declared length is over the server's limit."""


@dataclass(frozen=True, slots=True)
class Connect:
    client_id: str
    username: str | None
    password: str | None
    clean_session: bool
    keep_alive: int
    protocol_name: str
    protocol_level: int
    will: bool


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    packet_id: int | None
    retain: bool
    dup: bool


@dataclass(frozen=True, slots=True)
class Subscribe:
    packet_id: int
    filters: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    packet_id: int
    filters: list[str]


@dataclass(frozen=True, slots=True)
class PubAck:
    packet_id: int


@dataclass(frozen=True, slots=True)
class PingReq:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    pass


@dataclass(frozen=True, slots=True)
class QoS2Flow:
    """PUBREC, PUBREL or PUBCOMP: IoT Hub does not speak QoS 2."""

    packet_type: int


Packet = Connect | Publish | Subscribe | Unsubscribe | PubAck | PingReq | Disconnect | QoS2Flow


def _complete(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise MalformedPacket("decoder waited for input past the packet")


def _decode_fixed_header(buffer: bytes | bytearray) -> MQTTFixedHeader | None:
    """The fixed header at the start of `buffer`, or None while it is still incomplete."""
    try:
        header = _complete(MQTTFixedHeader.from_stream(BufferReader(bytes(buffer[:_MAX_HEADER]))))
    except NoDataError:
        return None
    except (MQTTError, CodecError) as error:
        raise MalformedPacket(f"bad fixed header: {error}") from error
    if header is None:
        return None
    assert isinstance(header, MQTTFixedHeader)
    return header


def _check_flags(header: MQTTFixedHeader) -> None:
    # [MQTT-2.2.2-1]: reserved flag values are fixed; anything else is malformed.
    expected = {SUBSCRIBE: 0x2, UNSUBSCRIBE: 0x2, PUBREL: 0x2}
    if header.packet_type == PUBLISH:
        if (header.flags >> 1) & 0x3 == 0x3:
            raise MalformedPacket("PUBLISH with QoS 3")
        return
    if header.flags != expected.get(header.packet_type, 0):
        raise MalformedPacket(f"packet type {header.packet_type} with flags {header.flags:#x}")


class _Strings:
    """Checks the UTF-8 strings of a packet body on the wire: amqtt decodes invalid UTF-8 to `str(bytes)`
    instead of failing, but [MQTT-1.5.3-1] and [MQTT-1.5.3-2] say the server must close the connection on
    ill-formed UTF-8 or U+0000."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.offset = 0

    def skip(self, count: int) -> None:
        self.offset += count

    def field(self, check: bool = True) -> None:
        """A two-byte length and that many bytes; checked as UTF-8 text unless `check` is false (binary)."""
        if self.offset + 2 > len(self._body):
            # Truncated: amqtt's decoder reports it. Consume the rest, or a caller looping `while more`
            # (UNSUBSCRIBE's topic list) would spin forever on one stray byte.
            self.offset = len(self._body)
            return
        length = int.from_bytes(self._body[self.offset : self.offset + 2], "big")
        raw = self._body[self.offset + 2 : self.offset + 2 + length]
        self.offset += 2 + length
        if not check:
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedPacket(f"string is not UTF-8: {error}") from None
        if "\x00" in text:
            raise MalformedPacket("string contains U+0000")

    @property
    def more(self) -> bool:
        return self.offset < len(self._body)


def _check_strings(kind: int, body: bytes) -> None:
    strings = _Strings(body)
    if kind == PUBLISH:
        strings.field()
    elif kind in (SUBSCRIBE, UNSUBSCRIBE):
        strings.skip(2)  # packet id
        while strings.more:
            strings.field()
            if kind == SUBSCRIBE:
                strings.skip(1)  # requested QoS
    elif kind == CONNECT:
        strings.field()  # protocol name
        flags = body[strings.offset + 1] if strings.offset + 1 < len(body) else 0
        strings.skip(4)  # level, flags, keep-alive
        strings.field()  # client id
        if flags & 0x04:
            strings.field()  # will topic
            strings.field(check=False)  # will message
        if flags & 0x80:
            strings.field()  # username
        # The password is binary data [MQTT-3.1.3.5].


def _decode(header: MQTTFixedHeader, body: bytes) -> Packet:
    kind = header.packet_type
    _check_strings(kind, body)
    reader = BufferReader(body)
    if kind == CONNECT:
        connect = _complete(ConnectPacket.from_stream(reader, fixed_header=header))
        variable = connect.variable_header
        if variable.flags & 0x01:
            raise MalformedPacket("CONNECT with the reserved flag set")  # [MQTT-3.1.2-3]
        if connect.password_flag and not connect.username_flag:
            raise MalformedPacket("CONNECT with a password but no username")  # [MQTT-3.1.2-22]
        return Connect(
            client_id="" if connect.payload.client_id_is_random else (connect.payload.client_id or ""),
            username=connect.payload.username if connect.username_flag else None,
            password=connect.payload.password if connect.password_flag else None,
            clean_session=bool(connect.clean_session_flag),
            keep_alive=int(variable.keep_alive),
            protocol_name=str(connect.proto_name),
            protocol_level=int(connect.proto_level),
            will=bool(connect.will_flag),
        )
    if kind == PUBLISH:
        publish = _complete(PublishPacket.from_stream(reader, fixed_header=header))
        return Publish(
            topic=publish.topic_name or "",
            payload=publish.data or b"",
            qos=int(publish.qos or 0),
            packet_id=publish.packet_id,
            retain=bool(publish.retain_flag),
            dup=bool(publish.dup_flag),
        )
    if kind == SUBSCRIBE:
        subscribe = _complete(SubscribePacket.from_stream(reader, fixed_header=header))
        filters = [(str(topic), int(qos)) for topic, qos in subscribe.payload.topics]
        if not filters:
            raise MalformedPacket("SUBSCRIBE without a topic filter")  # [MQTT-3.8.3-3]
        return Subscribe(subscribe.variable_header.packet_id, filters)
    if kind == UNSUBSCRIBE:
        unsubscribe = _complete(UnsubscribePacket.from_stream(reader, fixed_header=header))
        return Unsubscribe(
            unsubscribe.variable_header.packet_id, [str(t) for t in unsubscribe.payload.topics]
        )
    if kind == PUBACK:
        puback = _complete(PubackPacket.from_stream(reader, fixed_header=header))
        return PubAck(int(puback.packet_id))
    if kind == PINGREQ:
        return PingReq()
    if kind == DISCONNECT:
        return Disconnect()
    if kind in (PUBREC, PUBREL, PUBCOMP):
        return QoS2Flow(kind)
    raise MalformedPacket(f"packet type {kind} is not sent by clients")


class FrameDecoder:
    """Splits a byte stream into packets; refuses one over `max_packet_size` before buffering it."""

    def __init__(self, max_packet_size: int) -> None:
        self._buffer = bytearray()
        self._max_packet_size = max_packet_size

    def feed(self, data: bytes) -> list[Packet]:
        self._buffer += data
        packets: list[Packet] = []
        while self._buffer:
            header = _decode_fixed_header(self._buffer)
            if header is None:
                if len(self._buffer) >= _MAX_HEADER:
                    raise MalformedPacket("remaining length longer than four bytes")
                break
            # Both checks need only the fixed header: garbage and oversize packets are refused at once,
            # before their bodies are waited for or buffered.
            _check_flags(header)
            if header.remaining_length > self._max_packet_size:
                raise PacketTooLarge(f"packet of {header.remaining_length} bytes")
            start = header.bytes_length
            end = start + header.remaining_length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[start:end])
            del self._buffer[:end]
            try:
                packets.append(_decode(header, body))
            except (NoDataError, MQTTError, CodecError, UnicodeDecodeError, ValueError) as error:
                raise MalformedPacket(f"cannot decode packet type {header.packet_type}: {error}") from error
        return packets


def encode_connack(return_code: int, session_present: bool = False) -> bytes:
    return bytes(ConnackPacket.build(int(session_present), return_code).to_bytes())


def encode_suback(packet_id: int, return_codes: list[int]) -> bytes:
    return bytes(SubackPacket.build(packet_id, return_codes).to_bytes())


def encode_unsuback(packet_id: int) -> bytes:
    return bytes(UnsubackPacket.build(packet_id).to_bytes())


def encode_puback(packet_id: int) -> bytes:
    return bytes(PubackPacket.build(packet_id).to_bytes())


def encode_pingresp() -> bytes:
    return bytes(PingRespPacket().to_bytes())


def encode_publish(topic: str, payload: bytes, qos: int = 0, packet_id: int | None = None) -> bytes:
    packet = PublishPacket.build(topic, payload, packet_id if qos else None, False, qos, False)
    return bytes(packet.to_bytes())
