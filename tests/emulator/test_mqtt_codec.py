"""FrameDecoder, pure: framing across chunk boundaries, limits, malformed input (no sockets)."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emulator import mqtt_codec as mqtt
from tests.emulator.clients import (
    connect_packet,
    disconnect_packet,
    pingreq_packet,
    puback_packet,
    publish_packet,
    subscribe_packet,
)

LIMIT = 1024

STREAM = (
    connect_packet("dev-1", "hub/dev-1/?api-version=2021-04-12", "SharedAccessSignature sr=x", keepalive=30)
    + subscribe_packet([("$iothub/twin/res/#", 1), ("$iothub/methods/POST/#", 0)], 7)
    + publish_packet("devices/dev-1/messages/events/%24.sub=c1", b'{"t": 21.5}', qos=1, packet_id=9)
    + publish_packet("devices/dev-1/messages/events/", b"x" * 300)
    + puback_packet(3)
    + pingreq_packet()
    + disconnect_packet()
)

EXPECTED: list[mqtt.Packet] = [
    mqtt.Connect(
        client_id="dev-1",
        username="hub/dev-1/?api-version=2021-04-12",
        password="SharedAccessSignature sr=x",
        clean_session=True,
        keep_alive=30,
        protocol_name="MQTT",
        protocol_level=4,
        will=False,
    ),
    mqtt.Subscribe(7, [("$iothub/twin/res/#", 1), ("$iothub/methods/POST/#", 0)]),
    mqtt.Publish("devices/dev-1/messages/events/%24.sub=c1", b'{"t": 21.5}', 1, 9, False, False),
    mqtt.Publish("devices/dev-1/messages/events/", b"x" * 300, 0, None, False, False),
    mqtt.PubAck(3),
    mqtt.PingReq(),
    mqtt.Disconnect(),
]


@contextmanager
def hang_guard(seconds: float) -> Iterator[None]:
    """Fail instead of hanging: the decoder is synchronous, so only a signal can interrupt it."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise AssertionError(f"decoder did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_whole_stream_decodes() -> None:
    assert mqtt.FrameDecoder(LIMIT).feed(STREAM) == EXPECTED


def test_byte_by_byte() -> None:
    decoder = mqtt.FrameDecoder(LIMIT)
    packets: list[mqtt.Packet] = []
    for index in range(len(STREAM)):
        packets += decoder.feed(STREAM[index : index + 1])
    assert packets == EXPECTED


@settings(deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=20))
def test_any_chunk_boundaries(cuts: list[int]) -> None:
    decoder = mqtt.FrameDecoder(LIMIT)
    bounds = [0, *sorted(cuts), len(STREAM)]
    packets: list[mqtt.Packet] = []
    for start, end in itertools.pairwise(bounds):
        packets += decoder.feed(STREAM[start:end])
    assert packets == EXPECTED


def test_incomplete_packet_waits() -> None:
    decoder = mqtt.FrameDecoder(LIMIT)
    packet = publish_packet("t", b"abc")
    assert decoder.feed(packet[:-1]) == []
    assert decoder.feed(packet[-1:]) == [mqtt.Publish("t", b"abc", 0, None, False, False)]


def test_oversize_refused_from_the_header_alone() -> None:
    # Only the fixed header of a 2 MB PUBLISH: refused before any of the body is buffered.
    header = bytes([0x30, 0x80, 0x80, 0x80, 0x01])
    with pytest.raises(mqtt.PacketTooLarge):
        mqtt.FrameDecoder(LIMIT).feed(header)
    assert len(publish_packet("t", b"x" * (LIMIT - 3))) - 3 == LIMIT  # exactly at the limit...
    assert mqtt.FrameDecoder(LIMIT).feed(publish_packet("t", b"x" * (LIMIT - 3)))  # ...is accepted
    with pytest.raises(mqtt.PacketTooLarge):
        mqtt.FrameDecoder(LIMIT).feed(publish_packet("t", b"x" * (LIMIT - 2))[:5])


def test_remaining_length_over_four_bytes() -> None:
    with pytest.raises(mqtt.MalformedPacket):
        mqtt.FrameDecoder(10**9).feed(bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]))


@pytest.mark.parametrize(
    "data",
    [
        bytes([0x80, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01]),  # SUBSCRIBE with flags 0 (must be 0b0010)
        bytes([0xA0, 0x02, 0x00, 0x01]),  # UNSUBSCRIBE with flags 0
        bytes([0xC1, 0x00]),  # PINGREQ with a flag bit set
        bytes([0xE8, 0x00]),  # DISCONNECT with a flag bit set
        bytes([0x42, 0x02, 0x00, 0x01]),  # PUBACK with a flag bit set
        bytes([0x11, 0x00]),  # CONNECT with a flag bit set
    ],
    ids=["subscribe", "unsubscribe", "pingreq", "disconnect", "puback", "connect"],
)
def test_reserved_flags_violated(data: bytes) -> None:
    with pytest.raises(mqtt.MalformedPacket, match="flags"):
        mqtt.FrameDecoder(LIMIT).feed(data)


def test_publish_qos3() -> None:
    data = bytearray(publish_packet("t", b"x", qos=1, packet_id=1))
    data[0] |= 0x06
    with pytest.raises(mqtt.MalformedPacket, match="QoS 3"):
        mqtt.FrameDecoder(LIMIT).feed(bytes(data))


@pytest.mark.parametrize(
    "data",
    [
        bytes([0x00, 0x00]),  # reserved packet type 0
        bytes([0xF0, 0x00]),  # reserved packet type 15
        bytes([0x20, 0x02, 0x00, 0x00]),  # CONNACK: a server packet
        bytes([0x90, 0x03, 0x00, 0x01, 0x00]),  # SUBACK: a server packet
        bytes([0x10, 0x03, 0x00, 0x04, 0x4D]),  # CONNECT cut inside its protocol name
        bytes([0x82, 0x02, 0x00, 0x01]),  # SUBSCRIBE without a topic filter
        bytes([0x30, 0x01, 0x00]),  # PUBLISH whose topic length is cut
        bytes([0x30, 0x04, 0x00, 0x02, 0xFF, 0xFE]),  # PUBLISH topic not UTF-8 [MQTT-1.5.3-1]
        bytes([0x30, 0x03, 0x00, 0x01, 0x00]),  # PUBLISH topic with U+0000 [MQTT-1.5.3-2]
        bytes([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0xC0, 0x00]),  # SUBSCRIBE filter not UTF-8
        connect_packet("dev", None, None)[:-3] + b"\xc3\x28\x41",  # CONNECT client id not UTF-8
        connect_packet("dev", "u\x00ser", None),  # CONNECT username with U+0000
        connect_packet("dev", None, None)[:9] + b"\x03" + connect_packet("dev", None, None)[10:],  # reserved
        connect_packet("dev", "user", None)[:9] + b"\x42" + connect_packet("dev", "user", None)[10:],
        bytes([0x40, 0x01, 0x00]),  # PUBACK with one byte of packet id
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(mqtt.MalformedPacket):
        mqtt.FrameDecoder(LIMIT).feed(data)


def test_garbage_refused_before_its_body_arrives() -> None:
    # "GE" of an HTTP request: PUBACK with flags 0b0111 and a 69-byte body that never comes.
    with pytest.raises(mqtt.MalformedPacket, match="flags"):
        mqtt.FrameDecoder(LIMIT).feed(b"GET / HTTP/1.1\r\n")


def test_qos2_flow_packets_are_reported() -> None:
    decoder = mqtt.FrameDecoder(LIMIT)
    assert decoder.feed(bytes([0x50, 0x02, 0x00, 0x01])) == [mqtt.QoS2Flow(5)]  # PUBREC
    assert decoder.feed(bytes([0x62, 0x02, 0x00, 0x01])) == [mqtt.QoS2Flow(6)]  # PUBREL


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_raise_only_malformed(chunks: list[bytes]) -> None:
    decoder = mqtt.FrameDecoder(LIMIT)
    with hang_guard(2.0):
        try:
            for chunk in chunks:
                decoder.feed(chunk)
        except mqtt.MalformedPacket:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=48), st.integers(min_value=0, max_value=len(STREAM) - 1))
@example(noise=b"\xa2\x03", at=0)  # an UNSUBSCRIBE whose last topic is one byte: once looped forever
def test_corrupted_stream_raises_only_malformed(noise: bytes, at: int) -> None:
    # Valid packets with bytes overwritten somewhere: likelier to get deep into each packet decoder.
    corrupted = STREAM[:at] + noise + STREAM[at + len(noise) :]
    with hang_guard(2.0), suppress(mqtt.MalformedPacket):
        mqtt.FrameDecoder(LIMIT).feed(corrupted)


def test_encoders_round_trip_through_a_parser() -> None:
    assert mqtt.encode_connack(5) == bytes([0x20, 0x02, 0x00, 0x05])
    assert mqtt.encode_connack(0, session_present=True) == bytes([0x20, 0x02, 0x01, 0x00])
    assert mqtt.encode_suback(7, [1, 0x80]) == bytes([0x90, 0x04, 0x00, 0x07, 0x01, 0x80])
    assert mqtt.encode_puback(513) == bytes([0x40, 0x02, 0x02, 0x01])
    assert mqtt.encode_pingresp() == bytes([0xD0, 0x00])
    assert mqtt.encode_publish("a/b", b"hi", qos=1, packet_id=2) == bytes(
        [0x32, 0x09, 0x00, 0x03, *b"a/b", 0x00, 0x02, *b"hi"]
    )
    assert mqtt.encode_publish("a", b"", qos=0, packet_id=5) == bytes([0x30, 0x03, 0x00, 0x01, *b"a"])
