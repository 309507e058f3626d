"""The bridge-facing mapping API: uplink, desired → write → acknowledgement, commands."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from tests.codec.conftest import REPO
from translator.codec import (
    BadCommandRequest,
    Codec,
    DeviceMapper,
    Operation,
    UnknownCommand,
    default_codec,
    load_codec,
    parse_codec,
)
from translator.iotc.protocol.methods import MethodStatus
from translator.iotc.protocol.twin import Twin, desired_properties, merge_patches, pending_acknowledgements
from translator.lwm2m import ObjectRegistry, Path, Record

T0 = 1_700_000_000.0


@pytest.fixture
def sensor(registry: ObjectRegistry) -> Codec:
    return load_codec(REPO / "codecs" / "3303-temperature.toml", registry)


@pytest.fixture
def device(registry: ObjectRegistry) -> Codec:
    return load_codec(REPO / "codecs" / "3-device.toml", registry)


def test_uplink_splits_telemetry_and_properties(sensor: Codec) -> None:
    mapper = DeviceMapper(sensor, device_id="dev1")
    uplink = mapper.uplink(
        [
            Record(Path(3303, 0, 5700), 21.5, T0),
            Record(Path(3303, 0, 5601), 19.0, T0),
            Record(Path(3303, 0, 5700), 21.7, T0 + 10),
            Record(Path(3303, 0, 5701), "Cel"),
        ]
    )
    assert [(m.component, m.values, m.time) for m in uplink.telemetry] == [
        ("temperature", {"temperature": 21.5, "minMeasured": 19.0}, datetime.fromtimestamp(T0, UTC)),
        ("temperature", {"temperature": 21.7}, datetime.fromtimestamp(T0 + 10, UTC)),
    ]
    assert uplink.reported == {"temperature": {"__t": "c", "sensorUnits": "Cel"}}
    assert uplink.unmapped == 0


def test_multiple_resources_become_maps_and_values_json(registry: ObjectRegistry) -> None:
    codec = default_codec([Path(3, 0), Path(6, 0)], registry)
    mapper = DeviceMapper(codec, device_id="dev1")
    uplink = mapper.uplink(
        [
            Record(Path(3, 0, 7, 0), 3300),
            Record(Path(3, 0, 7, 1), 5000),
            Record(Path(3, 0, 22, 0), __import__("translator.lwm2m", fromlist=["ObjLink"]).ObjLink(3303, 0)),
            Record(Path(6, 0, 5), datetime.fromtimestamp(T0, UTC)),
            Record(Path(6, 0, 4), b"\x01\x02"),
        ]
    )
    assert uplink.telemetry[0].values == {"powerSourceVoltage": {"0": 3300, "1": 5000}}
    assert uplink.telemetry[0].time is None
    assert uplink.reported == {
        "device": {"__t": "c", "extdevinfo": {"0": "3303:0"}},
        "location": {"__t": "c", "timestamp": "2023-11-14T22:13:20Z", "velocity": "AQI="},
    }


def test_non_finite_floats_become_null(sensor: Codec) -> None:
    uplink = DeviceMapper(sensor, device_id="d").uplink([Record(Path(3303, 0, 5700), float("nan"))])
    assert uplink.telemetry[0].values == {"temperature": None}


def test_scale_and_offset_apply_to_uplink(registry: ObjectRegistry) -> None:
    codec = load_codec(REPO / "codecs" / "3311-light-control.toml", registry)
    uplink = DeviceMapper(codec, device_id="d").uplink([Record(Path(3311, 0, 5805), 1500.0)])
    assert uplink.telemetry[0].values == {"energy": 1.5}


def test_unmapped_resources_are_counted_and_logged_once(
    sensor: Codec, caplog: pytest.LogCaptureFixture
) -> None:
    mapper = DeviceMapper(sensor, device_id="dev7")
    # DEBUG, not WARNING: the bridge names what is not translated in one INFO line per registration.
    with caplog.at_level(logging.DEBUG, logger="translator.codec.mapper"):
        for _ in range(3):
            uplink = mapper.uplink([Record(Path(3303, 0, 6042), 1), Record(Path(3303, 5, 5700), 1.0)])
            assert uplink.unmapped == 2
            assert uplink.telemetry == ()
    assert mapper.unmapped_count == 6
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # one per distinct resource, not per record
    assert all(getattr(r, "device_id", None) == "dev7" for r in caplog.records)  # a field, not text
    assert all(r.levelno < logging.INFO for r in caplog.records)


# --- desired → write → acknowledgement -------------------------------------------------------------


def test_desired_write_ack_round_trip(device: Codec, registry: ObjectRegistry) -> None:
    light = load_codec(REPO / "codecs" / "3311-light-control.toml", registry)
    mapper = DeviceMapper(light, device_id="lamp")
    patch = {"$version": 7, "light": {"__t": "c", "dimmer": 40, "on": True}}
    plan = mapper.desired(desired_properties(patch, light.component_names))
    assert plan.acknowledgements == ()
    writes = {str(w.write.path): w for w in plan.writes}
    assert writes["/3311/0/5851"].write.records == (Record(Path(3311, 0, 5851), 40),)
    assert writes["/3311/0/5850"].write.records == (Record(Path(3311, 0, 5850), True),)

    acks = merge_patches([w.completed() for w in plan.writes])
    assert acks == {
        "light": {
            "__t": "c",
            "dimmer": {"value": 40, "ac": 200, "av": 7, "ad": "completed"},
            "on": {"value": True, "ac": 200, "av": 7, "ad": "completed"},
        }
    }
    twin = Twin(desired=patch, reported={"$version": 3, **acks})
    assert pending_acknowledgements(twin, light.component_names) == []

    # The device later reports the value itself: acknowledgement form, 203, the version we handled.
    uplink = mapper.uplink([Record(Path(3311, 0, 5851), 40)])
    assert uplink.reported == {
        "light": {"__t": "c", "dimmer": {"value": 40, "ac": 203, "av": 7, "ad": "reported by device"}}
    }
    twin = Twin(desired=patch, reported={"$version": 4, **merge_patches([acks, uplink.reported])})
    assert pending_acknowledgements(twin, light.component_names) == []


def test_out_of_range_and_wrong_type_are_acknowledged_400(registry: ObjectRegistry) -> None:
    light = load_codec(REPO / "codecs" / "3311-light-control.toml", registry)
    mapper = DeviceMapper(light, device_id="lamp")
    patch = {"$version": 2, "light": {"__t": "c", "dimmer": 150, "on": "yes", "onTime": 2.5}}
    plan = mapper.desired(desired_properties(patch, light.component_names))
    assert plan.writes == ()
    acks = merge_patches(plan.acknowledgements)["light"]
    assert acks["dimmer"] == {"value": 150, "ac": 400, "av": 2, "ad": "Dimmer: 150 is out of range 0..100"}
    assert acks["on"]["ac"] == 400 and "true or false" in acks["on"]["ad"]
    assert acks["onTime"]["ac"] == 400 and "integer" in acks["onTime"]["ad"]


def test_write_failure_and_unknown_property(device: Codec) -> None:
    mapper = DeviceMapper(device, device_id="d")
    plan = mapper.desired(
        desired_properties(
            {
                "$version": 4,
                "timezone": "Europe/Paris",
                "manufacturer": "x",
                "currentTime": "2024-01-02T03:04:05Z",
                "utcOffset": None,
            }
        )
    )
    assert [str(w.write.path) for w in plan.writes] == ["/3/0/15", "/3/0/13"]
    assert plan.writes[1].write.records[0].value == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert plan.acknowledgements == (
        {"manufacturer": {"value": "x", "ac": 400, "av": 4, "ad": "manufacturer is not a writable property"}},
    )
    assert plan.writes[0].failed("the device answered 4.05", 400) == {
        "timezone": {"value": "Europe/Paris", "ac": 400, "av": 4, "ad": "the device answered 4.05"}
    }


def test_multiple_writable_resource_takes_an_instance_map(registry: ObjectRegistry) -> None:
    codec = default_codec([Path(1, 0)], registry)
    mapper = DeviceMapper(codec, device_id="d")
    plan = mapper.desired(
        desired_properties(
            {
                "$version": 1,
                "lwm2mServer_0": {"__t": "c", "supportedServerVersions": {"1": "1.1", "0": "1.0"}},
            }
        )
    )
    assert plan.writes[0].write.records == (
        Record(Path(1, 0, 25, 0), "1.0"),
        Record(Path(1, 0, 25, 1), "1.1"),
    )
    bad = mapper.desired(
        desired_properties(
            {"$version": 2, "lwm2mServer_0": {"__t": "c", "supportedServerVersions": {"x": "1.0"}}}
        )
    )
    assert bad.acknowledgements[0]["lwm2mServer_0"]["supportedServerVersions"]["ac"] == 400


# --- commands --------------------------------------------------------------------------------------


def test_execute_command(sensor: Codec) -> None:
    call = DeviceMapper(sensor, device_id="d").command("temperature*resetMinMax", None)
    assert call.operation.operation is Operation.EXECUTE
    assert call.operation.path == Path(3303, 0, 5605)
    assert call.succeeded().status == MethodStatus.OK
    failed = call.failed(404, "device answered 4.04")  # the status comes from coap/statuses.py
    assert (failed.status, failed.payload) == (404, {"error": "device answered 4.04"})


def test_execute_arguments_are_mapped(registry: ObjectRegistry) -> None:
    text = (
        '[template]\nid = "dtmi:test:x;1"\n'
        '[[command]]\nname = "reboot"\noperation = "execute"\npath = "/3/0/4"\n'
        'arguments = [{ name = "delay", digit = 0, schema = "integer" }, { name = "mode", digit = 1 },'
        ' { name = "force", digit = 2, schema = "boolean" }]\n'
    )
    mapper = DeviceMapper(parse_codec(text, registry), device_id="d")
    assert (
        mapper.command("reboot", {"delay": 5, "mode": "soft", "force": True}).operation.arguments
        == "0='5',1='soft',2"
    )
    assert mapper.command("reboot", {"force": False}).operation.arguments is None
    with pytest.raises(BadCommandRequest, match="spaces"):
        mapper.command("reboot", {"mode": "a b"})
    with pytest.raises(BadCommandRequest, match="unknown argument"):
        mapper.command("reboot", {"other": 1})
    with pytest.raises(BadCommandRequest, match="expected long"):
        mapper.command("reboot", {"delay": "soon"})


def test_read_command_returns_values(device: Codec) -> None:
    call = DeviceMapper(device, device_id="d").command("readIdentity", None)
    assert call.operation == type(call.operation)(Operation.READ, Path(3, 0))
    result = call.succeeded(
        [Record(Path(3, 0, 0), "ACME"), Record(Path(3, 0, 3), "1.2.3"), Record(Path(3, 0, 9), 80)]
    )
    assert result.status == 200
    assert result.payload == {"manufacturer": "ACME", "firmwareVersion": "1.2.3"}


def test_write_command(registry: ObjectRegistry) -> None:
    light = load_codec(REPO / "codecs" / "3311-light-control.toml", registry)
    mapper = DeviceMapper(light, device_id="d")
    call = mapper.command("light*toggle", False)
    assert call.operation.records == (Record(Path(3311, 0, 5850), False),)
    with pytest.raises(BadCommandRequest, match="true or false") as caught:
        mapper.command("light*toggle", "off")
    assert caught.value.status == MethodStatus.BAD_REQUEST


@pytest.mark.parametrize(
    "name", ["nope", "temperature*nope", "other*resetMinMax", "*x", "temperature*temperature"]
)
def test_unknown_commands_are_404(sensor: Codec, name: str) -> None:
    with pytest.raises(UnknownCommand) as caught:
        DeviceMapper(sensor, device_id="d").command(name, None)
    assert caught.value.status == MethodStatus.NOT_FOUND


def test_observations_for_registered_instances(sensor: Codec) -> None:
    observations = sensor.observations([Path(3303, 0), Path(3303, 1), Path(3, 0)])
    assert (str(observations[0].path), observations[0].attributes) == (
        "/3303/0/5700",
        {"pmin": 10, "pmax": 300, "st": 0.5},
    )
    assert all(o.path[1] == 0 for o in observations)  # /3303/1 has no component in this codec
    assert Path(3303, 0, 5701) in sensor.property_paths([Path(3303, 0)])
