"""Topic strings exactly as PROTOCOLS.md §1/§2 and Microsoft's MQTT docs write them, and round trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.errors import MessageTooLargeError, TopicError
from translator.iotc.protocol.property_bag import PropertyBag
from translator.iotc.protocol.topics import (
    DESIRED_PATCH_SUBSCRIPTION,
    DPS_RESPONSE_SUBSCRIPTION,
    METHODS_SUBSCRIPTION,
    TWIN_RESPONSE_SUBSCRIPTION,
    CloudToDevice,
    DesiredPatch,
    DpsOperationStatus,
    DpsRegister,
    DpsResponse,
    DpsTopic,
    HubTopic,
    MethodRequest,
    MethodResponse,
    ReportedPatch,
    Telemetry,
    TwinGet,
    TwinResponse,
    c2d_subscription,
    dps_resource_uri,
    dps_username,
    hub_resource_uri,
    hub_username,
    parse_dps_topic,
    parse_hub_topic,
)


def test_usernames() -> None:
    assert dps_username("0ne000ABCDE", "dev-1") == "0ne000ABCDE/registrations/dev-1/api-version=2019-03-31"
    assert (
        hub_username("hub.azure-devices.net", "dev-1", "dtmi:com:example:Thermostat;1")
        == "hub.azure-devices.net/dev-1/?api-version=2021-04-12"
        "&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1"
    )
    assert hub_username("h", "d") == "h/d/?api-version=2021-04-12"


def test_resource_uris() -> None:
    assert dps_resource_uri("0ne000ABCDE", "dev-1") == "0ne000ABCDE/registrations/dev-1"
    assert hub_resource_uri("hub.azure-devices.net", "dev-1") == "hub.azure-devices.net/devices/dev-1"


def test_subscriptions() -> None:
    assert DPS_RESPONSE_SUBSCRIPTION == "$dps/registrations/res/#"
    assert TWIN_RESPONSE_SUBSCRIPTION == "$iothub/twin/res/#"
    assert DESIRED_PATCH_SUBSCRIPTION == "$iothub/twin/PATCH/properties/desired/#"
    assert METHODS_SUBSCRIPTION == "$iothub/methods/POST/#"
    assert c2d_subscription("dev-1") == "devices/dev-1/messages/devicebound/#"


@pytest.mark.parametrize(
    ("value", "topic"),
    [
        (DpsRegister("1"), "$dps/registrations/PUT/iotdps-register/?$rid=1"),
        (
            DpsOperationStatus("2", "4.abc.def"),
            "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=4.abc.def",
        ),
        (DpsResponse(202, "1", 3.0), "$dps/registrations/res/202/?$rid=1&retry-after=3"),
        (DpsResponse(200, "2"), "$dps/registrations/res/200/?$rid=2"),
        (TwinGet("7"), "$iothub/twin/GET/?$rid=7"),
        (ReportedPatch("8"), "$iothub/twin/PATCH/properties/reported/?$rid=8"),
        (TwinResponse(200, "7"), "$iothub/twin/res/200/?$rid=7"),
        (TwinResponse(204, "8", version=5), "$iothub/twin/res/204/?$rid=8&$version=5"),
        (DesiredPatch(12), "$iothub/twin/PATCH/properties/desired/?$version=12"),
        (
            MethodRequest("thermostat1*getMaxMinReport", "9"),
            "$iothub/methods/POST/thermostat1*getMaxMinReport/?$rid=9",
        ),
        (MethodResponse(200, "9"), "$iothub/methods/res/200/?$rid=9"),
        (
            Telemetry("dev-1", PropertyBag.telemetry()),
            "devices/dev-1/messages/events/$.ct=application%2Fjson&$.ce=utf-8",
        ),
        (
            Telemetry(
                "dev-1",
                PropertyBag.telemetry(
                    component="thermostat1", creation_time=datetime(2024, 5, 1, 12, 0, 0, 123000, UTC)
                ),
            ),
            "devices/dev-1/messages/events/$.ct=application%2Fjson&$.ce=utf-8&$.sub=thermostat1"
            "&iothub-creation-time-utc=2024-05-01T12%3A00%3A00.123Z",
        ),
        (CloudToDevice("dev-1"), "devices/dev-1/messages/devicebound/"),
    ],
)
def test_builders_produce_documented_strings(value: DpsTopic | HubTopic, topic: str) -> None:
    assert value.topic == topic
    parser = parse_dps_topic if topic.startswith("$dps") else parse_hub_topic
    assert parser(topic) == value


def test_hub_sent_devicebound_topic_decodes() -> None:
    # The shape IoT Hub sends for an IoT Central queued command (keys with `$` percent-encoded).
    topic = (
        "devices/dev-1/messages/devicebound/%24.mid=6b4b5c5e-1&%24.to=%2Fdevices%2Fdev-1%2Fmessages%2Fdevicebound"
        "&%24.ct=application%2Fjson&%24.ce=utf-8&iothub-ack=full&method-name=thermostat1%2Areboot"
    )
    message = parse_hub_topic(topic)
    assert isinstance(message, CloudToDevice)
    assert message.device_id == "dev-1"
    assert message.properties.message_id == "6b4b5c5e-1"
    assert message.properties.to == "/devices/dev-1/messages/devicebound"
    assert message.properties.ack == "full"
    assert message.properties.content_type == "application/json"
    assert message.properties.method_name == "thermostat1*reboot"


def test_devicebound_without_trailing_bag() -> None:
    assert parse_hub_topic("devices/d/messages/devicebound") == CloudToDevice("d")


@pytest.mark.parametrize("device_id", ["urn:imei:3512-00000", "urn:dev:ops:001a2b-sensor-1234", "a%b$c'd"])
def test_device_ids_are_raw_in_topics(device_id: str) -> None:
    """Raw, as Microsoft's SDK writes them (`mqtt_topic_iothub._get_topic_base`): IoT Hub does not decode."""
    topic = Telemetry(device_id, PropertyBag()).topic
    assert topic == f"devices/{device_id}/messages/events/"
    assert parse_hub_topic(topic) == Telemetry(device_id, PropertyBag())
    assert c2d_subscription(device_id) == f"devices/{device_id}/messages/devicebound/#"
    assert CloudToDevice(device_id).topic == f"devices/{device_id}/messages/devicebound/"
    assert hub_username("h.azure-devices.net", device_id).startswith(f"h.azure-devices.net/{device_id}/?")


def test_fractional_retry_after() -> None:
    assert parse_dps_topic("$dps/registrations/res/429/?$rid=1&retry-after=1.5") == DpsResponse(429, "1", 1.5)


@pytest.mark.parametrize(
    "topic",
    [
        "$dps/registrations/res/abc/?$rid=1",
        "$dps/registrations/res/200/",
        "$dps/registrations/res/429/?$rid=1&retry-after=soon",
        "$dps/registrations/res/429/?$rid=1&retry-after=-1",
        "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1",
        "$dps/other",
    ],
)
def test_bad_dps_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_dps_topic(topic)


@pytest.mark.parametrize(
    "topic",
    [
        "$iothub/twin/res/20x/?$rid=1",
        "$iothub/twin/res/204/?$rid=1&$version=v",
        "$iothub/twin/PATCH/properties/desired/",
        "$iothub/methods/POST//?$rid=1",
        "$iothub/methods/POST/x",
        "devices/d/messages/other/",
        "devices//messages/events/",
        "$iothub/unknown",
        "elsewhere",
    ],
)
def test_bad_hub_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_hub_topic(topic)


def test_telemetry_size_limit() -> None:
    telemetry = Telemetry("d", PropertyBag.telemetry())
    telemetry.check_size(b"x" * 1000)
    with pytest.raises(MessageTooLargeError) as info:
        telemetry.check_size(b"x" * (256 * 1024))
    assert info.value.limit == 256 * 1024


_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30)
_status = st.integers(min_value=100, max_value=999)
_seconds = st.none() | st.integers(0, 3600).map(float) | st.floats(0, 3600, allow_nan=False)
# What IoT Hub accepts as a device id (translator/iotc/protocol/ids.py): never `/`, `+` or `#`.
_device_id = st.text(st.sampled_from("abcXYZ019-.%_*?!(),:=@$'"), min_size=1, max_size=30)


@given(rid=_text, operation_id=_text, status=_status, retry_after=_seconds)
def test_dps_round_trips(rid: str, operation_id: str, status: int, retry_after: float | None) -> None:
    for value in (
        DpsRegister(rid),
        DpsOperationStatus(rid, operation_id),
        DpsResponse(status, rid, retry_after),
    ):
        assert parse_dps_topic(value.topic) == value
        assert "#" not in value.topic and "+" not in value.topic


@given(
    rid=_text,
    name=_text,
    status=_status,
    device_id=_device_id,
    extras=st.tuples(st.none() | st.integers(0, 2**53), _seconds),
)
def test_hub_round_trips(
    rid: str, name: str, status: int, device_id: str, extras: tuple[int | None, float | None]
) -> None:
    version, retry_after = extras
    values: list[HubTopic] = [
        TwinGet(rid),
        ReportedPatch(rid),
        TwinResponse(status, rid, version, retry_after),
        DesiredPatch(version or 0),
        MethodRequest(name, rid),
        MethodResponse(status, rid),
        Telemetry(device_id, PropertyBag.telemetry(component=name, custom={"k": rid})),
        CloudToDevice(device_id, PropertyBag(message_id=rid, custom=(("method-name", name),))),
    ]
    for value in values:
        assert parse_hub_topic(value.topic) == value
        assert "#" not in value.topic and "+" not in value.topic
