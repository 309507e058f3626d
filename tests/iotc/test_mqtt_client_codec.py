"""The translator's client-side MQTT codec, checked against amqtt's independent implementation."""

from __future__ import annotations

import pytest
from amqtt.adapters import BufferReader
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.suback import SubackPacket
from amqtt.mqtt.subscribe import SubscribePacket
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.iotc.protocol import mqtt_codec as codec


def _decode_with_amqtt(packet_class, data: bytes):
    coroutine = packet_class.from_stream(BufferReader(data))
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("amqtt decoder suspended")


def test_connect_matches_amqtt_reading() -> None:
    data = codec.encode_connect(
        "dev-1", "hub/dev-1/?api-version=2021-04-12", "token", keep_alive=300, clean_session=False
    )
    packet = _decode_with_amqtt(ConnectPacket, data)
    assert packet.payload.client_id == "dev-1"
    assert packet.payload.username == "hub/dev-1/?api-version=2021-04-12"
    assert packet.payload.password == "token"
    assert packet.variable_header.keep_alive == 300
    assert packet.clean_session_flag is False
    assert packet.proto_level == 4


@given(
    topic=st.text(st.characters(codec="utf-8", exclude_characters="#+\x00"), min_size=1, max_size=200),
    payload=st.binary(max_size=70000),
    packet_id=st.integers(1, 65535),
)
@settings(max_examples=200, deadline=None)
def test_publish_round_trips_through_amqtt(topic: str, payload: bytes, packet_id: int) -> None:
    data = codec.encode_publish(topic.encode(), payload, 1, packet_id)
    packet = _decode_with_amqtt(PublishPacket, data)
    assert (packet.topic_name, packet.data, packet.qos, packet.packet_id) == (topic, payload, 1, packet_id)
    # and our own decoder reads what the server would send back
    [message] = codec.Decoder(max_packet=1 << 20).feed(
        bytes(PublishPacket.build(topic, payload, packet_id, False, 1, False).to_bytes())
    )
    assert message == codec.Message(topic, payload, 1, packet_id)


def test_subscribe_and_acks() -> None:
    data = codec.encode_subscribe(7, [("$iothub/twin/res/#", 1), ("devices/d/messages/devicebound/#", 1)])
    packet = _decode_with_amqtt(SubscribePacket, data)
    assert packet.payload.topics == [("$iothub/twin/res/#", 1), ("devices/d/messages/devicebound/#", 1)]
    incoming = codec.Decoder().feed(
        bytes(SubackPacket.build(7, [1, 0x80]).to_bytes())
        + bytes(PubackPacket.build(9).to_bytes())
        + b"\xd0\x00"
    )
    assert incoming == [codec.SubAck(7, (1, 0x80)), codec.PubAck(9), codec.PingResp()]


@given(st.binary(max_size=300), st.integers(1, 50))
@settings(max_examples=300, deadline=None)
def test_decoder_handles_any_split_and_only_raises_protocol_errors(data: bytes, chunk: int) -> None:
    decoder = codec.Decoder(max_packet=4096)
    try:
        for start in range(0, len(data), chunk):
            decoder.feed(data[start : start + chunk])
    except codec.MqttProtocolError:
        pass


def test_stream_split_byte_by_byte_gives_the_same_packets() -> None:
    stream = codec.encode_puback(1) + bytes(
        PublishPacket.build("a/b", b"x" * 300, 5, False, 1, False).to_bytes()
    )
    whole = codec.Decoder().feed(stream)
    decoder = codec.Decoder()
    pieces = [packet for index in range(len(stream)) for packet in decoder.feed(stream[index : index + 1])]
    assert pieces == whole == [codec.PubAck(1), codec.Message("a/b", b"x" * 300, 1, 5)]


def test_oversize_and_overlong_length_are_refused() -> None:
    with pytest.raises(codec.MqttProtocolError):
        codec.Decoder(max_packet=10).feed(b"\x30\x20" + b"\x00" * 32)
    with pytest.raises(codec.MqttProtocolError):
        codec.Decoder().feed(b"\x30\xff\xff\xff\xff\x01")
