"""Topic and property-bag parsing on the service side (IoT Hub and DPS conventions)."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote

DPS_REGISTER_PREFIX = "$dps/registrations/PUT/iotdps-register/"
DPS_POLL_PREFIX = "$dps/registrations/GET/iotdps-get-operationstatus/"
DPS_RESPONSE_FILTER = "$dps/registrations/res/#"

TWIN_RESPONSE_FILTER = "$iothub/twin/res/#"
TWIN_DESIRED_FILTER = "$iothub/twin/PATCH/properties/desired/#"
METHODS_FILTER = "$iothub/methods/POST/#"
TWIN_GET_PREFIX = "$iothub/twin/GET/"
TWIN_REPORTED_PREFIX = "$iothub/twin/PATCH/properties/reported/"
METHOD_RESPONSE_PREFIX = "$iothub/methods/res/"

# System properties IoT Hub recognises in a telemetry property bag.
SYSTEM_PROPERTIES = {
    "$.mid": "messageId",
    "$.cid": "correlationId",
    "$.uid": "userId",
    "$.to": "to",
    "$.ct": "contentType",
    "$.ce": "contentEncoding",
    "$.sub": "component",
    "$.exp": "expiryTimeUtc",
    "$.ctime": "creationTimeUtc",
}


def telemetry_prefix(device_id: str) -> str:
    return f"devices/{device_id}/messages/events/"


def devicebound_prefix(device_id: str) -> str:
    return f"devices/{device_id}/messages/devicebound/"


def parse_query(text: str) -> dict[str, str]:
    """`$rid=1&retry-after=3` after the `?` of a topic; values percent-decoded."""
    return dict(parse_qsl(text, keep_blank_values=True))


def topic_query(topic: str) -> dict[str, str]:
    _, _, query = topic.partition("?")
    return parse_query(query)


def parse_property_bag(bag: str) -> dict[str, str]:
    """`$.ct=application%2Fjson&k=v`: a flat, percent-encoded key=value list (a key may have no value)."""
    properties: dict[str, str] = {}
    for item in bag.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        properties[unquote(name)] = unquote(value)
    return properties


def encode_property_bag(properties: dict[str, str]) -> str:
    # IoT Hub percent-encodes `$` too: `%24.mid=...&%24.to=...`.
    return "&".join(f"{quote(name, safe='.')}={quote(value, safe='')}" for name, value in properties.items())


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1 topic filter matching with `+` and `#`."""
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)
