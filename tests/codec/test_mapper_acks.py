"""Acknowledgements tell the truth: refused writes carry the device's value and the right code, and a value
acknowledged 200 is not turned into a 203 when the device reports it again (also after a restart)."""

from __future__ import annotations

from tests.codec.conftest import REPO
from translator.codec import DeviceMapper, ack_code_for, load_codec
from translator.iotc.protocol.twin import AckCode, Twin, desired_properties
from translator.lwm2m import ObjectRegistry, Path, Record

DIMMER = Path(3311, 0, 5851)


def _light(registry: ObjectRegistry) -> DeviceMapper:
    return DeviceMapper(load_codec(REPO / "codecs" / "3311-light-control.toml", registry), device_id="lamp")


def test_coap_errors_map_to_400_and_500() -> None:
    assert ack_code_for(0x80) == AckCode.REJECTED  # 4.00
    assert ack_code_for(0x84) == AckCode.REJECTED  # 4.04
    assert ack_code_for(0xA0) == AckCode.FAILED  # 5.00
    assert ack_code_for(0xA3) == AckCode.FAILED  # 5.03


def test_a_refused_write_is_acknowledged_with_the_held_value(registry: ObjectRegistry) -> None:
    mapper = _light(registry)
    mapper.uplink([Record(DIMMER, 50)])
    patch = {"$version": 3, "light": {"__t": "c", "dimmer": 70}}
    (pending,) = mapper.desired(desired_properties(patch, mapper.codec.component_names)).writes
    assert mapper.held_value(pending.desired, [Record(DIMMER, 55)]) == 55  # the read-back wins
    assert mapper.held_value(pending.desired, None) == 50  # else the last value the device reported
    ack = pending.failed("device answered 4.00", ack_code_for(0x80), 55)
    assert ack == {
        "light": {"__t": "c", "dimmer": {"value": 55, "ac": 400, "av": 3, "ad": "device answered 4.00"}}
    }


def test_an_acknowledged_value_reported_again_keeps_its_200(registry: ObjectRegistry) -> None:
    mapper = _light(registry)
    patch = {"$version": 5, "light": {"__t": "c", "dimmer": 70}}
    (pending,) = mapper.desired(desired_properties(patch, mapper.codec.component_names)).writes
    mapper.acknowledged(pending.desired)
    assert mapper.uplink([Record(DIMMER, 70)]).reported is None
    # A value the device changed itself is news: 203 at the version handled.
    assert mapper.uplink([Record(DIMMER, 20)]).reported == {
        "light": {"__t": "c", "dimmer": {"value": 20, "ac": 203, "av": 5, "ad": "reported by device"}}
    }


def test_after_a_restart_the_twin_tells_what_is_settled(registry: ObjectRegistry) -> None:
    mapper = _light(registry)  # a new mapper: the translator restarted
    twin = Twin(
        desired={"$version": 9, "light": {"__t": "c", "dimmer": 70, "on": True}},
        reported={
            "$version": 4,
            "light": {"__t": "c", "dimmer": {"value": 70, "ac": 200, "av": 8, "ad": "completed"}},
        },
    )
    mapper.adopt_twin(twin)
    assert mapper.uplink([Record(DIMMER, 70)]).reported is None
    # "on" is not settled (no acknowledgement): the device's own value goes out as 203 with version 0.
    assert mapper.uplink([Record(Path(3311, 0, 5850), False)]).reported == {
        "light": {"__t": "c", "on": {"value": False, "ac": 203, "av": 0, "ad": "reported by device"}}
    }
