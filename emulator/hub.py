"""The IoT Hub device endpoint over MQTT: authentication, telemetry, twin, methods, cloud-to-device."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from emulator import mqtt_codec as mqtt
from emulator.activity import Activity
from emulator.config import EmulatorConfig
from emulator.connection import ClientConnection, ProtocolViolation
from emulator.faults import Faults
from emulator.ids import valid_common_name, valid_device_id
from emulator.limits import ServiceLimits
from emulator.sas import SasError, derive_device_key, parse_sas, verify_sas
from emulator.state import COMPONENT_MARKER, Application, C2DMessage, Device, merge_patch, utc_now_iso
from emulator.topics import (
    METHOD_RESPONSE_PREFIX,
    METHODS_FILTER,
    SYSTEM_PROPERTIES,
    TWIN_DESIRED_FILTER,
    TWIN_GET_PREFIX,
    TWIN_REPORTED_PREFIX,
    TWIN_RESPONSE_FILTER,
    devicebound_prefix,
    encode_property_bag,
    parse_property_bag,
    telemetry_prefix,
    topic_query,
)

log = logging.getLogger("emulator.hub")

# The hub accepts these filters only, with or without the trailing wildcard.
_TWIN_FILTERS = (TWIN_RESPONSE_FILTER, TWIN_DESIRED_FILTER, METHODS_FILTER)


class MethodError(Exception):
    """A direct method could not be delivered or answered; `status` is IoT Hub's HTTP status."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class HubUsername:
    hub: str
    device_id: str
    query: dict[str, str]

    @property
    def model_id(self) -> str:
        return self.query.get("model-id", "")


def parse_hub_username(username: str) -> HubUsername | None:
    """`{hub}/{deviceId}/?api-version=...&model-id=...`; device ids cannot contain '/'."""
    hub, sep, rest = username.partition("/")
    if not sep:
        return None
    device_id, sep, query = rest.partition("/")
    if not sep or not device_id or not query.startswith("?"):
        return None
    pairs = {}
    for item in query[1:].split("&"):
        name, _, value = item.partition("=")
        if name:
            pairs[unquote(name)] = unquote(value)
    if "api-version" not in pairs:
        return None
    return HubUsername(hub, device_id, pairs)


@dataclass(slots=True)
class TelemetryEvent:
    sequence: int
    device_id: str
    hub: str
    topic: str
    component: str | None
    enqueued_time: str
    properties: dict[str, str]  # application properties, including iothub-creation-time-utc
    system_properties: dict[str, str]
    body: Any  # JSON value when the body is JSON, else text, else {"base64": ...}

    def view(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "deviceId": self.device_id,
            "hub": self.hub,
            "component": self.component,
            "enqueuedTime": self.enqueued_time,
            "properties": self.properties,
            "systemProperties": self.system_properties,
            "body": self.body,
        }


def _decode_body(payload: bytes) -> Any:
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(payload).decode()}
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(slots=True)
class TelemetryLog:
    """Every telemetry message, in arrival order, bounded; a test reads it from a sequence number on."""

    capacity: int
    events: deque[TelemetryEvent] = field(default_factory=deque)
    next_sequence: int = 1
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def append(self, **fields: Any) -> TelemetryEvent:
        event = TelemetryEvent(sequence=self.next_sequence, **fields)
        self.next_sequence += 1
        self.events.append(event)
        while len(self.events) > self.capacity:
            self.events.popleft()
        self.arrived.set()
        self.arrived = asyncio.Event()
        return event

    def since(self, sequence: int, device_id: str | None = None) -> list[TelemetryEvent]:
        return [
            event
            for event in self.events
            if event.sequence > sequence and (device_id is None or event.device_id == device_id)
        ]


class HubService:
    def __init__(
        self,
        application: Application,
        config: EmulatorConfig,
        faults: Faults,
        *,
        on_change: Callable[[], None],
        assign_template: Callable[[Device, str], None] = lambda device, model_id: None,
        clock: Callable[[], float] = time.time,
        limits: ServiceLimits | None = None,
        activity: Activity | None = None,
    ) -> None:
        self.activity = activity or Activity()
        self._application = application
        self._config = config
        self._faults = faults
        self._on_change = on_change
        self._assign_template = assign_template
        self._clock = clock
        self.limits = limits or ServiceLimits(config.limit_settings(), time.monotonic)
        self.attempts: Counter[str] = Counter()  # CONNECTs per device id
        self.sessions: dict[str, HubSession] = {}
        # clean_session=0 keeps a device's subscriptions across connections, as IoT Hub does.
        self._persistent_subscriptions: dict[str, dict[str, int]] = {}
        self._pending_methods: dict[tuple[str, str], asyncio.Future[tuple[int, Any]]] = {}
        self._next_rid = 0
        self._connected_events: dict[str, asyncio.Event] = {}
        self.telemetry = TelemetryLog(config.telemetry_log_size)
        self._expiry_timers: dict[str, asyncio.TimerHandle] = {}

    # -- connect ----------------------------------------------------------------------------------

    def throttling(self) -> float:
        """Seconds of the hub's throttling fault left (0.0: not throttled)."""
        return self._faults.hub_throttled(self._clock())

    def credentials_problem(self, username: HubUsername, password: str | None, cn: str | None) -> str:
        """Why these credentials may not act as the device on that hub ('' when they may)."""
        return self._credentials_problem(username, password, cn)

    def _credentials_problem(self, username: HubUsername, password: str | None, cn: str | None) -> str:
        if cn is not None and password is None:
            if not valid_common_name(cn):
                return f"certificate CN {cn!r} is longer than 64 characters, which X.509 forbids"
            return "" if cn == username.device_id else f"certificate CN {cn!r} is not the device id"
        if password is None:
            return "no SAS token and no device certificate"
        if password in self._faults.revoked_tokens:
            return "token expired (fault injection)"
        try:
            token = parse_sas(password)
            keys = [
                derive_device_key(group_key, username.device_id)
                for group_key in (self._application.group_primary_key, self._application.group_secondary_key)
                if group_key
            ]
            verify_sas(
                token,
                expected_resource=f"{username.hub}/devices/{username.device_id}",
                keys=keys,
                now=self._clock(),
            )
        except SasError as error:
            return str(error)
        return ""

    def open_session(
        self, connection: ClientConnection, connect: mqtt.Connect, username: HubUsername
    ) -> HubSession | int:
        device_id = username.device_id
        self.attempts[device_id] += 1
        if not valid_device_id(device_id):
            # No such device can exist in the identity registry, so none can connect.
            log.warning("hub %r: not a valid device id", device_id)
            return mqtt.CONNACK_IDENTIFIER_REJECTED
        if connect.client_id != device_id:
            log.warning("hub %s: client id %r is not the device id", device_id, connect.client_id)
            return mqtt.CONNACK_IDENTIFIER_REJECTED
        if username.hub not in self._config.hub_names:
            log.warning("hub %s: no hub named %r here", device_id, username.hub)
            return mqtt.CONNACK_NOT_AUTHORIZED
        if self._faults.hub_throttled(self._clock()):
            log.warning("hub %s: connection throttled", device_id)
            return mqtt.CONNACK_SERVER_UNAVAILABLE
        if not self.limits.hub_connect(username.hub):
            log.warning("hub %s: over the new-connections-per-second throttle of %s", device_id, username.hub)
            return mqtt.CONNACK_SERVER_UNAVAILABLE
        problem = self._credentials_problem(username, connect.password, connection.certificate_cn)
        if problem:
            log.warning("hub %s: unauthorized: %s", device_id, problem)
            return mqtt.CONNACK_NOT_AUTHORIZED
        device = self._application.device(device_id)
        if device is None or not device.provisioned or device.assigned_hub != username.hub:
            log.warning("hub %s: device is not registered on %s", device_id, username.hub)
            return mqtt.CONNACK_NOT_AUTHORIZED
        if not device.enabled:
            # Microsoft's C SDK reads "server unavailable" as DEVICE_DISABLED.
            log.warning("hub %s: device is disabled", device_id)
            return mqtt.CONNACK_SERVER_UNAVAILABLE

        activity = self.activity.of(device_id)
        activity.hub_connects += 1
        previous = self.sessions.get(device_id)
        if previous is not None:
            # IoT Hub allows one connection per identity and closes the previous one (error 400027
            # ConnectionForcefullyClosedOnNewConnection, seen in the hub's diagnostics; over MQTT 3.1.1 the
            # device only sees its connection closed, with no reason):
            # https://learn.microsoft.com/azure/iot-hub/troubleshoot-error-codes
            activity.taken_over += 1
            previous.connection.close("another connection for the same device id")
        if connect.clean_session:
            self._persistent_subscriptions.pop(device_id, None)
        else:
            stored = self._persistent_subscriptions.setdefault(device_id, {})
            connection.subscriptions = stored
        if username.model_id and username.model_id != device.model_id:
            device.model_id = username.model_id
            self._on_change()
        # Only a device's first connection assigns its template; later CONNECTs never re-assign it.
        self._assign_template(device, device.model_id)
        session = HubSession(self, connection, device, username.hub, connect.password)
        self.sessions[device_id] = session
        self._schedule_expiry(session, connect.password)
        self._connected_event(device_id).set()
        return session

    def _schedule_expiry(self, session: HubSession, password: str | None) -> None:
        if password is None:
            return
        try:
            expiry = parse_sas(password).expiry
        except SasError:
            return
        delay = max(0.0, expiry - self._clock())
        loop = asyncio.get_running_loop()
        session.expiry_timer = loop.call_later(delay, session.connection.close, "SAS token expired")

    def _connected_event(self, device_id: str) -> asyncio.Event:
        event = self._connected_events.get(device_id)
        if event is None:
            event = self._connected_events[device_id] = asyncio.Event()
        return event

    def session_closed(self, session: HubSession) -> None:
        if self.sessions.get(session.device.device_id) is session:
            del self.sessions[session.device.device_id]
            self._connected_event(session.device.device_id).clear()
        if session.expiry_timer is not None:
            session.expiry_timer.cancel()
        for (device_id, rid), future in list(self._pending_methods.items()):
            if device_id == session.device.device_id and not future.done():
                future.set_exception(MethodError(404, 404103, "The device disconnected before answering"))
                self._pending_methods.pop((device_id, rid), None)

    def online(self, device_id: str) -> bool:
        return device_id in self.sessions

    def disconnect(self, device_id: str, reason: str) -> bool:
        session = self.sessions.get(device_id)
        if session is None:
            return False
        session.connection.close(reason)
        return True

    def disconnect_all(self, reason: str) -> int:
        sessions = list(self.sessions.values())
        for session in sessions:
            session.connection.close(reason)
        return len(sessions)

    # -- service-side operations (REST) -----------------------------------------------------------

    def update_desired(self, device: Device, patch: dict[str, Any]) -> dict[str, Any]:
        self.limits.check_desired(patch, merge_patch(device.twin.desired, patch))
        document = device.twin.patch_desired(patch)
        self._on_change()
        session = self.sessions.get(device.device_id)
        if session is not None:
            topic = f"$iothub/twin/PATCH/properties/desired/?$version={device.twin.desired_version}"
            session.connection.publish(topic, json.dumps(document).encode(), qos=0)
        log.info("hub %s: desired patch version %d", device.device_id, device.twin.desired_version)
        return document

    async def invoke_method(
        self, device_id: str, method: str, payload: Any, *, response_timeout: float, connect_timeout: float
    ) -> tuple[int, Any]:
        """Deliver a direct method and wait for the device's answer, as IoT Hub does for IoT Central."""
        self.limits.check_method_payload(payload)
        if connect_timeout > 0 and device_id not in self.sessions:
            event = self._connected_event(device_id)
            try:
                async with asyncio.timeout(connect_timeout):
                    await event.wait()
            except TimeoutError:
                pass
        session = self.sessions.get(device_id)
        if session is None or session.connection.is_subscribed(f"$iothub/methods/POST/{method}/") is None:
            log.info("hub %s: method %s: device not online", device_id, method)
            raise MethodError(404, 404103, "Timed out waiting for device to connect.")
        self._next_rid += 1
        rid = format(self._next_rid, "x")
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._pending_methods[(device_id, rid)] = future
        topic = f"$iothub/methods/POST/{method}/?$rid={rid}"
        session.connection.publish(topic, json.dumps(payload).encode(), qos=0)
        log.info("hub %s: method %s sent ($rid=%s)", device_id, method, rid)
        try:
            async with asyncio.timeout(response_timeout):
                return await future
        except TimeoutError:
            log.info("hub %s: method %s timed out after %.0f s", device_id, method, response_timeout)
            raise MethodError(504, 504101, "Timed out waiting for the response from device.") from None
        finally:
            self._pending_methods.pop((device_id, rid), None)

    def method_answered(self, device_id: str, rid: str, status: int, body: Any) -> bool:
        future = self._pending_methods.get((device_id, rid))
        if future is None or future.done():
            return False
        future.set_result((status, body))
        return True

    def enqueue_c2d(self, device: Device, payload: str, properties: dict[str, str]) -> C2DMessage:
        self.limits.check_c2d(payload, len(device.c2d))
        message = C2DMessage(
            message_id=str(uuid.uuid4()),
            payload=payload,
            properties=properties,
            expiry=self._clock() + self._config.c2d_ttl,
            enqueued=utc_now_iso(),
        )
        device.c2d.append(message)
        self._on_change()
        log.info("hub %s: cloud-to-device message %s queued", device.device_id, message.message_id)
        session = self.sessions.get(device.device_id)
        if session is not None:
            session.deliver_c2d()
        return message

    def c2d_completed(self, device: Device, message_id: str) -> None:
        device.c2d = [message for message in device.c2d if message.message_id != message_id]
        self._on_change()
        log.info("hub %s: cloud-to-device message %s completed", device.device_id, message_id)

    def record_telemetry(self, session: HubSession, topic: str, bag: str, publish: mqtt.Publish) -> None:
        properties = parse_property_bag(bag)
        if publish.retain:
            properties["mqtt-retain"] = "true"  # IoT Hub does not retain; it marks the message instead
        system = {SYSTEM_PROPERTIES[k]: v for k, v in properties.items() if k in SYSTEM_PROPERTIES}
        application_properties = {k: v for k, v in properties.items() if k not in SYSTEM_PROPERTIES}
        self.record_event(
            session.device,
            session.hub,
            topic=topic,
            system=system,
            application_properties=application_properties,
            payload=publish.payload,
        )

    def record_event(
        self,
        device: Device,
        hub: str,
        *,
        topic: str,
        system: dict[str, str],
        application_properties: dict[str, str],
        payload: bytes,
    ) -> None:
        """One device-to-cloud message, whichever protocol brought it (MQTT, or emulator/https_device.py)."""
        component = system.get("component")
        body = _decode_body(payload)
        enqueued = utc_now_iso(self._clock())
        event = self.telemetry.append(
            device_id=device.device_id,
            hub=hub,
            topic=topic,
            component=component,
            enqueued_time=enqueued,
            properties=application_properties,
            system_properties=system,
            body=body,
        )
        timestamp = application_properties.get("iothub-creation-time-utc", enqueued)
        if isinstance(body, dict):
            for name, value in body.items():
                key = f"{component}/{name}" if component else name
                device.telemetry[key] = {"timestamp": timestamp, "value": value}
        log.debug("hub %s: telemetry #%d (%d bytes)", device.device_id, event.sequence, len(payload))

    def telemetry_ack_delay(self) -> float:
        return self._faults.ack_delay(self._clock())

    def twin_throttled(self) -> bool:
        return bool(self._faults.hub_throttled(self._clock()))

    @property
    def max_message_bytes(self) -> int:
        return self._config.max_message_bytes

    def now(self) -> float:
        return self._clock()

    def changed(self) -> None:
        self._on_change()


class HubSession:
    name = "hub"

    def __init__(
        self, service: HubService, connection: ClientConnection, device: Device, hub: str, token: str | None
    ) -> None:
        self.service = service
        self.token = token
        self.connection = connection
        self.device = device
        self.hub = hub
        self.expiry_timer: asyncio.TimerHandle | None = None
        self._c2d_in_flight: set[str] = set()
        self._shaping_delay = 0.0  # the PUBACK delay traffic shaping gave the message being handled

    def accepts_filter(self, topic_filter: str) -> bool:
        devicebound = devicebound_prefix(self.device.device_id)
        candidates = (*_TWIN_FILTERS, devicebound + "#")
        return topic_filter in candidates or topic_filter + "#" in candidates

    def on_subscribed(self, topic_filters: list[str]) -> None:
        self.deliver_c2d()

    def on_accepted(self) -> None:
        # A persistent session (clean_session=0) resumes its devicebound subscription: messages queued
        # while the device was away go out now, without a new SUBSCRIBE. "If set to false: the device
        # will receive messages that were sent to it while it was disconnected." —
        # https://learn.microsoft.com/dotnet/api/microsoft.azure.devices.client.iothubclientmqttsettings.cleansession
        self.deliver_c2d()

    def on_puback(self, packet_id: int) -> None:
        pass

    def ack_delay(self, publish: mqtt.Publish) -> float:
        if not publish.topic.startswith(telemetry_prefix(self.device.device_id)):
            return 0.0
        shaping, self._shaping_delay = self._shaping_delay, 0.0
        return max(shaping, self.service.telemetry_ack_delay())

    def on_closed(self, reason: str) -> None:
        self._c2d_in_flight.clear()
        self.service.session_closed(self)

    def deliver_c2d(self) -> None:
        now = self.service.now()
        expired = [message for message in self.device.c2d if message.expiry <= now]
        for message in expired:
            log.info("hub %s: cloud-to-device message %s expired", self.device.device_id, message.message_id)
            self.service.c2d_completed(self.device, message.message_id)
        for message in self.device.c2d:
            if message.message_id in self._c2d_in_flight:
                continue
            bag = encode_property_bag(
                {
                    "$.mid": message.message_id,
                    "$.to": f"/devices/{self.device.device_id}/messages/deviceBound",
                    "iothub-ack": "none",
                    **message.properties,
                }
            )
            topic = devicebound_prefix(self.device.device_id) + bag
            sent = self.connection.publish(
                topic,
                message.payload.encode(),
                qos=1,
                on_ack=functools.partial(self.service.c2d_completed, self.device, message.message_id),
            )
            if not sent:
                return
            self._c2d_in_flight.add(message.message_id)

    def on_publish(self, publish: mqtt.Publish) -> None:
        topic = publish.topic
        device_id = self.device.device_id
        if len(publish.payload) > self.service.max_message_bytes:
            raise ProtocolViolation(
                f"message of {len(publish.payload)} bytes is over the {self.service.max_message_bytes} limit"
            )
        events = telemetry_prefix(device_id)
        if topic.startswith(events) or topic + "/" == events:
            delay = self.service.limits.telemetry(self.hub, device_id)
            if delay is None:
                # The shaping backlog is full: IoT Hub rejects the send; over MQTT that ends the connection.
                raise ProtocolViolation("throttled: over the device-to-cloud send rate for too long")
            self._shaping_delay = delay
            self.service.record_telemetry(self, topic, topic[len(events) :], publish)
        elif topic.startswith(TWIN_GET_PREFIX):
            self._twin_get(topic_query(topic).get("$rid", ""))
        elif topic.startswith(TWIN_REPORTED_PREFIX):
            self._twin_patch(topic_query(topic).get("$rid", ""), publish.payload)
        elif topic.startswith(METHOD_RESPONSE_PREFIX):
            self._method_response(topic, publish.payload)
        else:
            raise ProtocolViolation(f"publish to {topic!r}, which device {device_id} may not use")

    def _twin_respond(self, status: int, rid: str, body: bytes, version: int | None = None) -> None:
        topic = f"$iothub/twin/res/{status}/?$rid={rid}"
        if version is not None:
            topic += f"&$version={version}"
        if not self.connection.publish(topic, body, qos=0):
            log.warning("hub %s: twin response dropped: not subscribed to %s", self.device.device_id, topic)

    def _twin_get(self, rid: str) -> None:
        if self.service.twin_throttled():
            self._twin_respond(429, rid, b"")
            return
        self._twin_respond(200, rid, json.dumps(self.device.twin.document()).encode())

    def _twin_patch(self, rid: str, payload: bytes) -> None:
        if self.service.twin_throttled() or not self.service.limits.property_update():
            self._twin_respond(429, rid, b"")
            return
        try:
            patch = json.loads(payload)
        except ValueError:
            patch = None
        if not isinstance(patch, dict) or any(name.startswith("$") for name in patch):
            log.warning("hub %s: bad reported patch %r", self.device.device_id, payload[:100])
            self._twin_respond(400, rid, json.dumps({"message": "Invalid reported patch"}).encode())
            return
        problem = self.service.limits.reported_problem(patch, merge_patch(self.device.twin.reported, patch))
        if problem:
            # IoT Hub rejects any operation that would take a twin section over its size limit.
            log.warning("hub %s: reported patch refused: %s", self.device.device_id, problem)
            self._twin_respond(413, rid, json.dumps({"message": problem}).encode())
            return
        version = self.device.twin.patch_reported(patch, utc_now_iso(self.service.now()))
        self.service.changed()
        log.info("hub %s: reported patch, version %d", self.device.device_id, version)
        self._twin_respond(204, rid, b"", version)

    def _method_response(self, topic: str, payload: bytes) -> None:
        status_text = topic[len(METHOD_RESPONSE_PREFIX) :].partition("/")[0]
        rid = topic_query(topic).get("$rid", "")
        try:
            status = int(status_text)
        except ValueError:
            raise ProtocolViolation(f"method response with status {status_text!r}") from None
        body: Any = None
        if payload:
            try:
                body = json.loads(payload)
            except ValueError:
                log.warning("hub %s: method response body is not JSON", self.device.device_id)
                body = payload.decode(errors="replace")
        if not self.service.method_answered(self.device.device_id, rid, status, body):
            log.info("hub %s: method response for unknown $rid %s", self.device.device_id, rid)


def component_patch(component: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """A desired patch in IoT Central's shape: component properties carry the `__t: c` marker."""
    if component is None:
        return values
    return {component: {COMPONENT_MARKER: "c", **values}}
