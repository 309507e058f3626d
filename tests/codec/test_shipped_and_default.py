"""Shipped codecs load and export valid templates; the default codec covers the whole OMA registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.codec.conftest import CODECS
from tests.codec.dtdl_rules import problems
from translator.codec import (
    Command,
    Kind,
    Operation,
    Property,
    Telemetry,
    default_codec,
    default_kind,
    export_template,
    is_dtdl_name,
    load_codec,
)
from translator.codec.coverage import untranslated
from translator.codec.export import capability_count
from translator.lwm2m import ObjectModel, ObjectRegistry
from translator.lwm2m import Path as LwPath

SHIPPED_OBJECTS = {3, 4, 5, 6, 3300, 3303, 3304, 3311, 3313, 3323, 3328}


def test_a_codec_ships_for_every_common_object(registry: ObjectRegistry) -> None:
    covered = {e.pattern.object_id for path in CODECS for e in load_codec(path, registry).entries()}
    assert covered == SHIPPED_OBJECTS


@pytest.mark.parametrize("path", CODECS, ids=lambda p: p.stem)
def test_shipped_codec_loads_and_exports_by_the_rules(path: Path, registry: ObjectRegistry) -> None:
    codec = load_codec(path, registry)
    assert list(codec.entries())
    assert problems(export_template(codec)) == []


def test_no_python_package_in_codecs() -> None:
    assert not (CODECS[0].parent / "__init__.py").exists()


def test_default_codec_over_the_whole_registry(full_registry: ObjectRegistry) -> None:
    ids = sorted({m.id for m in full_registry})
    assert len(ids) == 282
    for oid in ids:
        codec = default_codec([LwPath(oid, 0), LwPath(oid, 1)], full_registry)
        names_per_interface: dict[str | None, set[str]] = {}
        for entry in codec.entries():
            assert is_dtdl_name(entry.name), (oid, entry.name)
            bucket = names_per_interface.setdefault(entry.component, set())
            assert entry.name not in bucket, (oid, entry.name)
            bucket.add(entry.name)
        assert problems(export_template(codec)) == [], oid


def test_one_template_with_every_registry_object(full_registry: ObjectRegistry) -> None:
    instances = [LwPath(m.id, 0) for m in full_registry if m.id not in (0, 21)]
    codec = default_codec(instances, full_registry)
    names = [c.name for c in codec.components]
    assert len(names) == len(set(names))
    # Past IoT Central's 300 capabilities per template, whole instances are left out, and said so.
    assert 250 < capability_count(codec) <= 300
    kept = {(c.object_id, c.instance_id) for c in codec.components}
    assert codec.left_out and not kept & {(p[0], p[1]) for p in codec.left_out}
    assert len(kept) + len(codec.left_out) == len(instances)
    assert (
        "instances over IoT Central's 300 capabilities"
        in untranslated(codec, instances, full_registry).describe()
    )
    assert problems(export_template(codec)) == []


def test_default_names_are_stable_and_readable(registry: ObjectRegistry) -> None:
    instances = [LwPath(3, 0), LwPath(3303, 0), LwPath(3303, 1)]
    first = default_codec(instances, registry)
    again = default_codec(list(reversed(instances)), registry)
    assert first.model_id == again.model_id
    assert [c.name for c in first.components] == ["device", "temperature_0", "temperature_1"]
    assert re.fullmatch(r"dtmi:iotcTranslator:lwm2m:auto:t[0-9a-f]{16};1", first.model_id)
    names = {(e.component, e.name): e for e in first.entries()}
    assert isinstance(names[("temperature_0", "sensorValue")], Telemetry)
    assert isinstance(names[("temperature_1", "sensorValue")], Telemetry)
    assert isinstance(names[("device", "manufacturer")], Property)
    assert isinstance(names[("device", "reboot")], Command)
    # One interface per component (IoT Central did not import shared ones): same contents, own ids.
    template = export_template(first)
    assert len(template) == 4
    assert template[2]["@id"].endswith(":i0;1") and template[3]["@id"].endswith(":i1;1")
    assert template[2]["contents"] == template[3]["contents"]


def test_default_classification(registry: ObjectRegistry) -> None:
    device = registry.get(3)
    temperature = registry.get(3303)
    firmware = registry.get(5)
    assert device is not None and temperature is not None and firmware is not None

    def kind(model: ObjectModel, rid: int) -> Kind | None:
        resource = model.resource(rid)
        assert resource is not None
        return default_kind(model.id, resource)

    assert kind(temperature, 5700) is Kind.TELEMETRY  # Sensor Value
    assert kind(temperature, 5603) is Kind.PROPERTY  # Min Range Value: fixed
    assert kind(temperature, 5701) is Kind.PROPERTY  # Sensor Units
    assert kind(temperature, 5750) is Kind.WRITABLE_PROPERTY
    assert kind(temperature, 5605) is Kind.EXECUTE
    assert kind(device, 9) is Kind.TELEMETRY  # Battery Level
    assert kind(device, 0) is Kind.PROPERTY
    assert kind(device, 13) is Kind.WRITABLE_PROPERTY  # Current Time
    assert kind(firmware, 0) is Kind.WRITE  # Package: write-only


def test_secrets_are_never_read(full_registry: ObjectRegistry) -> None:
    apn = full_registry.get(11)
    assert apn is not None
    codec = default_codec([LwPath(11, 0)], full_registry)
    secret = next(e for e in codec.entries() if e.pattern.resource_id == 6)  # "Secret", RW
    assert isinstance(secret, Command) and secret.operation is Operation.WRITE


def test_codec_file_overrides_the_default_per_object(registry: ObjectRegistry) -> None:
    overrides = [load_codec(p, registry) for p in CODECS]
    codec = default_codec([LwPath(3, 0), LwPath(3303, 0), LwPath(3303, 1)], registry, overrides=overrides)
    by_name = {(e.component, e.name): e for e in codec.entries()}
    temperature = by_name[("temperature_1", "temperature")]
    assert isinstance(temperature, Telemetry)
    assert temperature.pattern.instance_id == 1
    assert temperature.unit is not None and temperature.unit.unit == "degreeCelsius"
    assert ("device", "model") in by_name  # the device codec's name, not the generated modelNumber
    assert problems(export_template(codec)) == []


def test_unknown_and_excluded_objects_are_left_out(registry: ObjectRegistry) -> None:
    codec = default_codec([LwPath(0, 0), LwPath(21, 0), LwPath(65000, 0), LwPath(3303)], registry)
    assert codec.components == ()
