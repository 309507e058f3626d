"""Builders and parsers for every DPS and IoT Hub MQTT topic, plus usernames and SAS resource URIs.

Each topic is a frozen dataclass: its `topic` property builds the string, and `parse_dps_topic` /
`parse_hub_topic` turn a string back into the dataclass. Variable parts ($rid, operation id, property
bags) are percent-encoded with `quote(..., safe="")` like Microsoft's Python device SDK, so no `/`, `+` or
`#` from data can leak into the topic structure.

The device id is the exception: it goes into topics (and the username) raw, as the SDK writes it
(azure-iot-device `mqtt_topic_iothub._get_topic_base`: "Neither Device ID nor Module ID should be URL
encoded in a topic string", see https://github.com/Azure/azure-iot-sdk-python/wiki/URL-Encoding-(MQTT)) and
as IoT Hub's MQTT page spells the topics (`devices/{device-id}/messages/events/`,
https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub): IoT Hub does not decode it, so
`urn%3Aimei%3A35` would be another device's topic and the hub closes the connection. A valid device id
(`translator/iotc/protocol/ids.py`) has no `/`, `+` or `#`, so it cannot break the topic structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from translator.iotc.protocol.errors import (
    MAX_MESSAGE_BYTES,
    MessageTooLargeError,
    PropertyBagError,
    TopicError,
)
from translator.iotc.protocol.property_bag import PropertyBag, decode_pairs

DPS_API_VERSION = "2019-03-31"
HUB_API_VERSION = "2021-04-12"
DPS_GLOBAL_HOST = "global.azure-devices-provisioning.net"

DPS_RESPONSE_SUBSCRIPTION = "$dps/registrations/res/#"
TWIN_RESPONSE_SUBSCRIPTION = "$iothub/twin/res/#"
DESIRED_PATCH_SUBSCRIPTION = "$iothub/twin/PATCH/properties/desired/#"
METHODS_SUBSCRIPTION = "$iothub/methods/POST/#"

_DPS = "$dps/registrations/"
_DPS_REGISTER = _DPS + "PUT/iotdps-register/"
_DPS_STATUS = _DPS + "GET/iotdps-get-operationstatus/"
_DPS_RES = _DPS + "res/"
_TWIN_GET = "$iothub/twin/GET/"
_TWIN_REPORTED = "$iothub/twin/PATCH/properties/reported/"
_TWIN_DESIRED = "$iothub/twin/PATCH/properties/desired/"
_TWIN_RES = "$iothub/twin/res/"
_METHOD_POST = "$iothub/methods/POST/"
_METHOD_RES = "$iothub/methods/res/"


def _enc(text: str) -> str:
    return quote(text, safe="")


# --- usernames and resource URIs -----------------------------------------------------------------


def dps_username(id_scope: str, registration_id: str) -> str:
    """`{idScope}/registrations/{registrationId}/api-version=2019-03-31` (no `?`, as DPS documents)."""
    return f"{id_scope}/registrations/{registration_id}/api-version={DPS_API_VERSION}"


def hub_username(hub: str, device_id: str, model_id: str | None = None) -> str:
    """`{hub}/{deviceId}/?api-version=2021-04-12[&model-id={urlencoded dtmi}]`.

    Host and device id go in as they are, the query values percent-encoded (the SDK's rule).
    """
    username = f"{hub}/{device_id}/?api-version={HUB_API_VERSION}"
    if model_id:
        username += f"&model-id={_enc(model_id)}"
    return username


def dps_resource_uri(id_scope: str, registration_id: str) -> str:
    """The (decoded) `sr` of a DPS token: `{idScope}/registrations/{registrationId}`."""
    return f"{id_scope}/registrations/{registration_id}"


def hub_resource_uri(hub: str, device_id: str) -> str:
    """The (decoded) `sr` of a device token: `{hub}/devices/{deviceId}`."""
    return f"{hub}/devices/{device_id}"


def c2d_subscription(device_id: str) -> str:
    return f"devices/{device_id}/messages/devicebound/#"


# --- query helpers -------------------------------------------------------------------------------


def _split(topic: str, prefix: str) -> tuple[str, dict[str, str]]:
    """Split `{prefix}{middle}?{query}` into middle (without trailing `/`) and decoded query."""
    rest = topic[len(prefix) :]
    middle, _, query = rest.partition("?")
    try:
        params: dict[str, str] = {}
        for key, value in decode_pairs(query):
            params.setdefault(key, value)
    except PropertyBagError as exc:
        raise TopicError(f"malformed query in {topic!r}") from exc
    return middle.removesuffix("/"), params


def _status(text: str, topic: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 3:
        raise TopicError(f"no status code in {topic!r}")
    return int(text)


def _rid(params: dict[str, str], topic: str) -> str:
    rid = params.get("$rid")
    if rid is None:
        raise TopicError(f"no $rid in {topic!r}")
    return rid


def _version(text: str | None, topic: str) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise TopicError(f"bad $version in {topic!r}")
    return int(text)


def _retry_after(text: str | None, topic: str) -> float | None:
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise TopicError(f"bad retry-after in {topic!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise TopicError(f"bad retry-after in {topic!r}")
    return seconds


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


# --- DPS -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DpsRegister:
    """Device → DPS: start a registration (body `{"registrationId", "payload"}`)."""

    rid: str

    @property
    def topic(self) -> str:
        return f"{_DPS_REGISTER}?$rid={_enc(self.rid)}"


@dataclass(frozen=True, slots=True)
class DpsOperationStatus:
    """Device → DPS: poll a registration operation."""

    rid: str
    operation_id: str

    @property
    def topic(self) -> str:
        return f"{_DPS_STATUS}?$rid={_enc(self.rid)}&operationId={_enc(self.operation_id)}"


@dataclass(frozen=True, slots=True)
class DpsResponse:
    """DPS → device: `$dps/registrations/res/{status}/?$rid=..[&retry-after=..]`."""

    status: int
    rid: str
    retry_after: float | None = None

    @property
    def topic(self) -> str:
        topic = f"{_DPS_RES}{self.status}/?$rid={_enc(self.rid)}"
        if self.retry_after is not None:
            topic += f"&retry-after={_fmt_seconds(self.retry_after)}"
        return topic


DpsTopic = DpsRegister | DpsOperationStatus | DpsResponse


def parse_dps_topic(topic: str) -> DpsTopic:
    if topic.startswith(_DPS_RES):
        middle, params = _split(topic, _DPS_RES)
        return DpsResponse(
            status=_status(middle, topic),
            rid=_rid(params, topic),
            retry_after=_retry_after(params.get("retry-after"), topic),
        )
    if topic.startswith(_DPS_REGISTER):
        middle, params = _split(topic, _DPS_REGISTER)
        if middle:
            raise TopicError(f"unexpected path in {topic!r}")
        return DpsRegister(rid=_rid(params, topic))
    if topic.startswith(_DPS_STATUS):
        middle, params = _split(topic, _DPS_STATUS)
        operation_id = params.get("operationId")
        if middle or operation_id is None:
            raise TopicError(f"malformed operation status topic {topic!r}")
        return DpsOperationStatus(rid=_rid(params, topic), operation_id=operation_id)
    raise TopicError(f"not a DPS topic: {topic!r}")


# --- IoT Hub -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Device → hub: `devices/{id}/messages/events/{property bag}`, QoS 1."""

    device_id: str
    properties: PropertyBag = field(default_factory=PropertyBag)

    @property
    def topic(self) -> str:
        return f"devices/{self.device_id}/messages/events/{self.properties.encode()}"

    def check_size(self, payload: bytes) -> None:
        """Refuse a message the hub would refuse: body plus properties over 256 KB."""
        size = len(payload) + len(self.properties.encode().encode("utf-8"))
        if size > MAX_MESSAGE_BYTES:
            raise MessageTooLargeError(size)


@dataclass(frozen=True, slots=True)
class CloudToDevice:
    """Hub → device: `devices/{id}/messages/devicebound/{property bag}`."""

    device_id: str
    properties: PropertyBag = field(default_factory=PropertyBag)

    @property
    def topic(self) -> str:
        return f"devices/{self.device_id}/messages/devicebound/{self.properties.encode()}"


@dataclass(frozen=True, slots=True)
class TwinGet:
    """Device → hub: request the full twin."""

    rid: str

    @property
    def topic(self) -> str:
        return f"{_TWIN_GET}?$rid={_enc(self.rid)}"


@dataclass(frozen=True, slots=True)
class ReportedPatch:
    """Device → hub: JSON merge patch of reported properties."""

    rid: str

    @property
    def topic(self) -> str:
        return f"{_TWIN_REPORTED}?$rid={_enc(self.rid)}"


@dataclass(frozen=True, slots=True)
class TwinResponse:
    """Hub → device: answer to a twin GET (200) or reported patch (204, with the new `$version`)."""

    status: int
    rid: str
    version: int | None = None
    retry_after: float | None = None

    @property
    def topic(self) -> str:
        topic = f"{_TWIN_RES}{self.status}/?$rid={_enc(self.rid)}"
        if self.version is not None:
            topic += f"&$version={self.version}"
        if self.retry_after is not None:
            topic += f"&retry-after={_fmt_seconds(self.retry_after)}"
        return topic

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class DesiredPatch:
    """Hub → device: a desired-properties patch, sent only while connected."""

    version: int

    @property
    def topic(self) -> str:
        return f"{_TWIN_DESIRED}?$version={self.version}"


@dataclass(frozen=True, slots=True)
class MethodRequest:
    """Hub → device: a direct method (IoT Central command); `name` may be `component*command`."""

    name: str
    rid: str

    @property
    def topic(self) -> str:
        # `*` stays literal: it is how component commands appear on the wire.
        return f"{_METHOD_POST}{quote(self.name, safe='*')}/?$rid={_enc(self.rid)}"


@dataclass(frozen=True, slots=True)
class MethodResponse:
    """Device → hub: the answer to a direct method, JSON body."""

    status: int
    rid: str

    @property
    def topic(self) -> str:
        return f"{_METHOD_RES}{self.status}/?$rid={_enc(self.rid)}"


HubTopic = (
    Telemetry
    | CloudToDevice
    | TwinGet
    | ReportedPatch
    | TwinResponse
    | DesiredPatch
    | MethodRequest
    | MethodResponse
)


def _parse_device_topic(topic: str) -> Telemetry | CloudToDevice:
    parts = topic.split("/", 4)
    if len(parts) < 4 or parts[2] != "messages" or parts[3] not in ("events", "devicebound"):
        raise TopicError(f"not a device message topic: {topic!r}")
    device_id = parts[1]  # raw, as the hub writes it
    if not device_id:
        raise TopicError(f"no device id in {topic!r}")
    try:
        properties = PropertyBag.decode(parts[4] if len(parts) == 5 else "")
    except PropertyBagError as exc:
        raise TopicError(f"malformed property bag in {topic!r}") from exc
    if parts[3] == "events":
        return Telemetry(device_id=device_id, properties=properties)
    return CloudToDevice(device_id=device_id, properties=properties)


def parse_hub_topic(topic: str) -> HubTopic:
    """Parse any device-side IoT Hub topic (either direction)."""
    if topic.startswith("devices/"):
        return _parse_device_topic(topic)
    if topic.startswith(_TWIN_RES):
        middle, params = _split(topic, _TWIN_RES)
        return TwinResponse(
            status=_status(middle, topic),
            rid=_rid(params, topic),
            version=_version(params.get("$version"), topic),
            retry_after=_retry_after(params.get("retry-after"), topic),
        )
    if topic.startswith(_TWIN_DESIRED):
        middle, params = _split(topic, _TWIN_DESIRED)
        version = _version(params.get("$version"), topic)
        if middle or version is None:
            raise TopicError(f"malformed desired patch topic {topic!r}")
        return DesiredPatch(version=version)
    if topic.startswith(_METHOD_POST):
        middle, params = _split(topic, _METHOD_POST)
        if not middle or "/" in middle:
            raise TopicError(f"no method name in {topic!r}")
        return MethodRequest(name=unquote(middle), rid=_rid(params, topic))
    if topic.startswith(_METHOD_RES):
        middle, params = _split(topic, _METHOD_RES)
        return MethodResponse(status=_status(middle, topic), rid=_rid(params, topic))
    if topic.startswith(_TWIN_GET):
        middle, params = _split(topic, _TWIN_GET)
        if middle:
            raise TopicError(f"unexpected path in {topic!r}")
        return TwinGet(rid=_rid(params, topic))
    if topic.startswith(_TWIN_REPORTED):
        middle, params = _split(topic, _TWIN_REPORTED)
        if middle:
            raise TopicError(f"unexpected path in {topic!r}")
        return ReportedPatch(rid=_rid(params, topic))
    raise TopicError(f"not an IoT Hub topic: {topic!r}")
