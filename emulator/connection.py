"""One client's TLS MQTT connection: framing, CONNECT, keep-alive, subscriptions, packet ids.

What the packets mean is the business of a `Session` (DPS or hub), chosen when CONNECT arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from emulator import mqtt_codec as mqtt
from emulator.certs import peer_common_name
from emulator.topics import topic_matches

log = logging.getLogger("emulator.mqtt")

READ_SIZE = 65536
# Room for the topic and property bag on top of the 256 KB body limit; the body limit itself is checked
# by the hub so that it can log and drop the connection the way IoT Hub does.
PACKET_OVERHEAD = 64 * 1024


class ProtocolViolation(Exception):
    """The client did something IoT Hub answers by closing the connection."""


class Session(Protocol):
    name: str  # "dps" or "hub", for logs

    def accepts_filter(self, topic_filter: str) -> bool: ...

    def on_publish(self, publish: mqtt.Publish) -> None: ...

    def on_subscribed(self, topic_filters: list[str]) -> None: ...

    def on_accepted(self) -> None:
        """The CONNACK is on its way: a resumed session may start sending."""
        ...

    def on_puback(self, packet_id: int) -> None: ...

    def ack_delay(self, publish: mqtt.Publish) -> float:
        """Seconds to hold this publish's PUBACK back (0: at once)."""
        ...

    def on_closed(self, reason: str) -> None: ...


class SessionFactory(Protocol):
    def __call__(self, connection: ClientConnection, connect: mqtt.Connect) -> Session | int:
        """A session, or a CONNACK return code that refuses the client."""
        ...


class ClientConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        open_session: SessionFactory,
        max_message_bytes: int,
        max_subscriptions: int,
        max_keep_alive: int,
        connect_timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._open_session = open_session
        self._decoder = mqtt.FrameDecoder(max_message_bytes + PACKET_OVERHEAD)
        self._max_subscriptions = max_subscriptions
        self._max_keep_alive = max_keep_alive
        self._connect_timeout = connect_timeout
        self._next_packet_id = 0
        self._ack_callbacks: dict[int, Callable[[], None]] = {}
        self.subscriptions: dict[str, int] = {}
        self.session: Session | None = None
        self.client_id = ""
        self.log_id = "-"
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.peer = writer.get_extra_info("peername")
        peer_cert = writer.get_extra_info("peercert")
        self.certificate_cn = peer_common_name(peer_cert if isinstance(peer_cert, dict) else None)

    # -- outgoing -----------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if not self.closed.is_set() and not self._writer.is_closing():
            self._writer.write(data)

    def is_subscribed(self, topic: str) -> int | None:
        """The granted QoS of the first filter matching `topic`, or None."""
        for topic_filter, qos in self.subscriptions.items():
            if topic_matches(topic_filter, topic):
                return qos
        return None

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 0, on_ack: Callable[[], None] | None = None
    ) -> bool:
        """Send to the client if it subscribed to `topic`; `on_ack` runs when a QoS 1 PUBACK arrives."""
        granted = self.is_subscribed(topic)
        if granted is None or self.closed.is_set():
            return False
        qos = min(qos, granted)
        packet_id = None
        if qos:
            self._next_packet_id = self._next_packet_id % 65535 + 1
            packet_id = self._next_packet_id
            if on_ack is not None:
                self._ack_callbacks[packet_id] = on_ack
        self._write(mqtt.encode_publish(topic, payload, qos, packet_id))
        return True

    def close(self, reason: str) -> None:
        """Drop the connection (IoT Hub's way of answering most errors). Idempotent."""
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        self._writer.close()
        if self.session is not None:
            log.info("%s %s disconnected: %s", self.session.name, self.log_id, reason)
            self.session.on_closed(reason)
        else:
            log.info("connection from %s closed before CONNECT: %s", self.peer, reason)

    # -- incoming -----------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._serve()
        except mqtt.PacketTooLarge as error:
            self.close(f"message too large ({error})")
        except mqtt.MalformedPacket as error:
            self.close(f"malformed packet: {error}")
        except ProtocolViolation as error:
            self.close(str(error))
        except TimeoutError:  # before OSError, of which it is a subclass
            self.close("keep-alive or CONNECT timeout")
        except (ConnectionError, OSError) as error:
            self.close(f"socket error: {error}")
        finally:
            self.close(self.close_reason or "connection closed by client")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 2)

    async def _read_packets(self, idle_limit: float | None) -> list[mqtt.Packet]:
        async with asyncio.timeout(idle_limit):
            data = await self._reader.read(READ_SIZE)
        if not data:
            raise ConnectionResetError("closed by peer")
        return self._decoder.feed(data)

    async def _serve(self) -> None:
        packets: list[mqtt.Packet] = []
        async with asyncio.timeout(self._connect_timeout):
            while not packets:
                packets = await self._read_packets(None)
        first, rest = packets[0], packets[1:]
        if not isinstance(first, mqtt.Connect):
            raise ProtocolViolation(f"first packet is {type(first).__name__}, not CONNECT")
        if not self._accept(first):
            return
        # [MQTT-3.1.2-24]: the server allows one and a half keep-alive periods; IoT Hub caps the period.
        keep_alive = min(first.keep_alive or self._max_keep_alive, self._max_keep_alive)
        idle_limit = keep_alive * 1.5
        while not self.closed.is_set():
            for packet in rest:
                self._handle(packet)
                if self.closed.is_set():
                    return
            rest = await self._read_packets(idle_limit)

    def _accept(self, connect: mqtt.Connect) -> bool:
        if connect.protocol_name != "MQTT" or connect.protocol_level != 4:
            self._write(mqtt.encode_connack(mqtt.CONNACK_BAD_PROTOCOL))
            self.close(f"protocol {connect.protocol_name} level {connect.protocol_level} is not MQTT 3.1.1")
            return False
        self.client_id = connect.client_id
        self.log_id = connect.client_id or "-"
        outcome = self._open_session(self, connect)
        if isinstance(outcome, int):
            self._write(mqtt.encode_connack(outcome))
            self.close(f"CONNECT refused with return code {outcome}")
            return False
        self.session = outcome
        self._write(mqtt.encode_connack(mqtt.CONNACK_ACCEPTED, session_present=bool(self.subscriptions)))
        log.info("%s %s connected from %s", outcome.name, self.log_id, self.peer)
        outcome.on_accepted()
        return True

    def _late_puback(self, packet_id: int) -> None:
        if not self.closed.is_set():
            self._write(mqtt.encode_puback(packet_id))

    def _handle(self, packet: mqtt.Packet) -> None:
        session = self.session
        assert session is not None
        match packet:
            case mqtt.Publish():
                if packet.qos == 2:
                    raise ProtocolViolation("QoS 2 PUBLISH (IoT Hub closes the connection)")
                session.on_publish(packet)
                if packet.qos == 1 and packet.packet_id is not None and not self.closed.is_set():
                    delay = session.ack_delay(packet)
                    if delay > 0:
                        asyncio.get_running_loop().call_later(delay, self._late_puback, packet.packet_id)
                    else:
                        self._write(mqtt.encode_puback(packet.packet_id))
            case mqtt.Subscribe():
                self._subscribe(session, packet)
            case mqtt.Unsubscribe():
                for topic_filter in packet.filters:
                    self.subscriptions.pop(topic_filter, None)
                self._write(mqtt.encode_unsuback(packet.packet_id))
            case mqtt.PubAck():
                callback = self._ack_callbacks.pop(packet.packet_id, None)
                if callback is not None:
                    callback()
                session.on_puback(packet.packet_id)
            case mqtt.PingReq():
                self._write(mqtt.encode_pingresp())
            case mqtt.Disconnect():
                self.close("DISCONNECT")
            case mqtt.QoS2Flow():
                raise ProtocolViolation("QoS 2 flow packet (IoT Hub closes the connection)")
            case mqtt.Connect():
                raise ProtocolViolation("second CONNECT on one connection")

    def _subscribe(self, session: Session, packet: mqtt.Subscribe) -> None:
        codes: list[int] = []
        granted: list[str] = []
        for topic_filter, qos in packet.filters:
            # IoT Hub answers an unsupported filter, or a sixth subscription, by closing the connection.
            if not session.accepts_filter(topic_filter):
                raise ProtocolViolation(f"subscription to {topic_filter!r}, which is not supported")
            if topic_filter not in self.subscriptions and len(self.subscriptions) >= self._max_subscriptions:
                raise ProtocolViolation(f"more than {self._max_subscriptions} subscriptions")
            # Granted QoS is at most 1.
            self.subscriptions[topic_filter] = min(qos, 1)
            codes.append(min(qos, 1))
            granted.append(topic_filter)
        self._write(mqtt.encode_suback(packet.packet_id, codes))
        session.on_subscribed(granted)
