"""IoT Central's geopoint and vector (its DTDL v2 extension): location and x/y/z triples as one telemetry,
in the template and on the wire ({"lat", "lon", "alt"} / {"x", "y", "z"}); and the template limit of 300
capabilities (https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits#device-modeling)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.codec.conftest import REPO
from tests.codec.dtdl_rules import problems
from translator.codec import (
    CodecFileError,
    DeviceMapper,
    default_codec,
    dtdl,
    export_template,
    load_codec,
    parse_codec,
)
from translator.lwm2m import ObjectRegistry, Path, Record


def _component_contents(template: list[dict[str, Any]], component: str) -> list[dict[str, Any]]:
    schema = next(c["schema"] for c in template[0]["contents"] if c["name"] == component)
    interface = next(i for i in template if i["@id"] == schema)
    assert interface["@context"] == [dtdl.CONTEXT, dtdl.IOTC_CONTEXT]
    contents: list[dict[str, Any]] = interface["contents"]
    return contents


def test_default_codec_exports_location_and_vectors(registry: ObjectRegistry) -> None:
    codec = default_codec([Path(6, 0), Path(3313, 0), Path(3314, 0), Path(3334, 0)], registry)
    template = export_template(codec)
    assert problems(template) == []
    location = _component_contents(template, "location")
    assert {"@type": ["Telemetry", "Location"], "name": "location", "schema": "geopoint"} | {
        "displayName": "Location"
    } in location
    assert not {"latitude", "longitude", "altitude"} & {c["name"] for c in location}
    acceleration = next(
        c for c in _component_contents(template, "accelerometer_0") if c["name"] == "acceleration"
    )
    # The built-in model of 3313 gives no unit: a plain vector (codecs/3313-accelerometer.toml adds m/s²).
    assert acceleration["@type"] == "Telemetry"
    assert acceleration["schema"] == "vector"
    gyro = next(c for c in _component_contents(template, "gyrometer_0") if c["name"] == "angularVelocity")
    assert gyro["@type"] == "Telemetry" and gyro["schema"] == "vector" and "unit" not in gyro


def test_shipped_codecs_use_geopoint_and_vector(registry: ObjectRegistry) -> None:
    location = export_template(load_codec(REPO / "codecs" / "6-location.toml", registry))
    assert {"@type": ["Telemetry", "Location"], "name": "location", "schema": "geopoint"} | {
        "displayName": "Location"
    } in location[0]["contents"]
    accelerometer = export_template(load_codec(REPO / "codecs" / "3313-accelerometer.toml", registry))
    assert {
        "@type": ["Telemetry", "AccelerationVector"],
        "name": "acceleration",
        "schema": "vector",
        "unit": "metrePerSecondSquared",
        "displayName": "Acceleration",
    } in accelerometer[1]["contents"]


def _records(time: float, **values: float) -> list[Record]:
    ids = {"lat": 0, "lon": 1, "alt": 2}
    return [Record(Path(6, 0, ids[k]), v, time) for k, v in values.items()]


def test_mapper_sends_whole_geopoints(registry: ObjectRegistry) -> None:
    mapper = DeviceMapper(default_codec([Path(6, 0)], registry), device_id="tracker")
    # Latitude alone means nothing on a map: held back until longitude is known.
    assert mapper.uplink(_records(1.0, lat=48.85)).telemetry == ()
    first = mapper.uplink(_records(2.0, lon=2.35, alt=35.0)).telemetry
    assert [(m.component, m.values) for m in first] == [
        ("location", {"location": {"lat": 48.85, "lon": 2.35, "alt": 35.0}})
    ]
    # A notification of the one resource that changed still sends the whole point.
    moved = mapper.uplink(_records(3.0, lat=48.86)).telemetry
    assert moved[0].values == {"location": {"lat": 48.86, "lon": 2.35, "alt": 35.0}}


def test_mapper_sends_whole_vectors(registry: ObjectRegistry) -> None:
    mapper = DeviceMapper(default_codec([Path(3313, 0)], registry), device_id="imu")
    axes = {5702: 0.1, 5703: -9.8, 5704: 0.3}
    uplink = mapper.uplink([Record(Path(3313, 0, rid), v) for rid, v in axes.items()])
    assert uplink.telemetry[0].values["acceleration"] == {"x": 0.1, "y": -9.8, "z": 0.3}


def _codec_text(extra: str) -> str:
    return f'[template]\nid = "dtmi:test:compound;1"\n{extra}'


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        (
            '[[telemetry]]\npath = "/6/0/0"\nname = "la"\nfield = "lat"\n',
            "telemetry[0].field",
            "needs geopoint",
        ),
        (
            '[[telemetry]]\npath = "/6/0/0"\nname = "la"\ngeopoint = "where"\nfield = "x"\n',
            "telemetry[0].field",
            "not one of lat, lon, alt",
        ),
        (
            '[[telemetry]]\npath = "/6/0/0"\nname = "la"\ngeopoint = "where"\nfield = "lat"\n',
            "telemetry 'where'",
            "a geopoint needs lon too",
        ),
    ],
)
def test_compound_mistakes_are_named(registry: ObjectRegistry, extra: str, field: str, reason: str) -> None:
    with pytest.raises(CodecFileError) as error:
        parse_codec(_codec_text(extra), registry, source="c.toml")
    assert field in str(error.value) and reason in str(error.value)


def test_a_codec_file_over_the_template_limit_is_refused(registry: ObjectRegistry) -> None:
    components = "".join(f'[[component]]\nname = "t{i}"\npath = "/3303/{i}"\n' for i in range(40))
    # 40 temperature sensors × 8 telemetry = 320 capabilities: each interface is fine, the template is not.
    telemetry = "".join(
        f'[[telemetry]]\npath = "/3303/*/{rid}"\nname = "r{rid}"\n'
        for rid in (5700, 5601, 5602, 5603, 5604, 5701, 6042, 6049)
    )
    with pytest.raises(CodecFileError) as error:
        parse_codec(_codec_text(components + telemetry), registry, source="big.toml")
    assert "320 capabilities" in str(error.value)
    assert "at most 300" in str(error.value)
