from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path as FsPath

import pytest

from translator.lwm2m import (
    DdfError,
    ObjectModel,
    ObjectRegistry,
    Operations,
    ResourceType,
    builtin_models,
    load_ddf_directory,
    load_ddf_file,
    parse_ddf,
)
from translator.lwm2m.registry import VersionedLookup

from .support import DDF_REGISTRY, REPO, require_shared


def builtin_wanted(oid: int) -> bool:
    return 0 <= oid <= 7 or 3200 <= oid <= 3350


@pytest.fixture(scope="module")
def registry_models() -> tuple[ObjectModel, ...]:
    return load_ddf_directory(require_shared(DDF_REGISTRY))


def test_loads_all_282_registry_files(registry_models: tuple[ObjectModel, ...]) -> None:
    files = sorted(DDF_REGISTRY.glob("*.xml"))
    assert len(files) == 282
    assert len(registry_models) == 282
    assert sorted(m.id for m in registry_models) == sorted(int(f.stem) for f in files)
    for m in registry_models:
        assert m.name and m.urn.startswith("urn:oma:lwm2m:")
        assert m.version in m.urn or m.version == "1.0"
        for r in m.resources:
            assert r.name == r.name.strip() and r.name
            if r.operations is Operations.EXECUTE:
                assert r.type is ResourceType.NONE


def test_known_facts(registry_models: tuple[ObjectModel, ...]) -> None:
    by_id = {m.id: m for m in registry_models}
    temp = by_id[3303]
    assert (temp.name, temp.version, temp.multiple, temp.mandatory) == ("Temperature", "1.1", True, False)
    sensor = temp.resource(5700)
    assert sensor is not None
    assert (sensor.name, sensor.type, sensor.operations, sensor.multiple, sensor.mandatory) == (
        "Sensor Value",
        ResourceType.FLOAT,
        Operations.READ,
        False,
        True,
    )
    device = by_id[3]
    assert device.multiple is False and device.mandatory is True
    r13, r22, r4 = device.resource(13), device.resource(22), device.resource(4)
    assert r13 is not None and r13.type is ResourceType.TIME and r13.writable
    assert r22 is not None and r22.type is ResourceType.OBJLNK and r22.multiple
    assert r4 is not None and r4.type is ResourceType.NONE and r4.executable
    r9 = device.resource(9)
    assert r9 is not None and (r9.units, r9.range) == ("/100", "0..100")
    # "Unsigned Integer" spelled with a space in some files, without in others.
    assert {r.type for m in registry_models for r in m.resources} >= {ResourceType.UNSIGNED_INTEGER}
    # Files with a UTF-8 BOM load like the others.
    assert by_id[19].name == "BinaryAppDataContainer"


def test_builtin_table_matches_registry(registry_models: tuple[ObjectModel, ...]) -> None:
    expected = {m.key: m for m in registry_models if builtin_wanted(m.id)}
    actual = {m.key: m for m in builtin_models()}
    assert actual.keys() == expected.keys()
    for key, model in expected.items():
        assert actual[key] == model, key


def test_generator_reproduces_the_committed_table(tmp_path: FsPath) -> None:
    registry_dir = require_shared(DDF_REGISTRY)
    spec = importlib.util.spec_from_file_location(
        "generate_object_table", REPO / "tools" / "generate_object_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "builtin_objects.py"
    if shutil.which("ruff") is None and importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is needed to format the generated table")
    assert module.main([str(registry_dir), "-o", str(out)]) == 0
    committed = REPO / "translator" / "lwm2m" / "builtin_objects.py"
    assert out.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8")


def test_generator_is_a_script(tmp_path: FsPath) -> None:
    registry_dir = require_shared(DDF_REGISTRY)
    out = tmp_path / "table.py"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "generate_object_table.py"),
            str(registry_dir),
            "-o",
            str(out),
            "--no-format",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "61 objects" in proc.stdout


DDF_11 = """\ufeff<?xml version="1.0" encoding="utf-8"?>
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:noNamespaceSchemaLocation="http://www.openmobilealliance.org/tech/profiles/LWM2M-v1_1.xsd">
  <Object ObjectType="MODefinition">
    <Name> Widget </Name>
    <Description1><![CDATA[A <widget> & friends]]></Description1>
    <ObjectID>42000</ObjectID>
    <ObjectURN>urn:oma:lwm2m:x:42000:2.1</ObjectURN>
    <LWM2MVersion>1.1</LWM2MVersion>
    <ObjectVersion>2.1</ObjectVersion>
    <MultipleInstances>Single</MultipleInstances>
    <Mandatory>Mandatory</Mandatory>
    <Resources>
      <Item ID="1">
        <Name>Count</Name><Operations>RW</Operations><MultipleInstances>Multiple</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type>UnsignedInteger</Type><RangeEnumeration>0..9</RangeEnumeration>
        <Units>s</Units><Description><![CDATA[desc]]></Description>
      </Item>
      <Item ID="0">
        <Name>Go</Name><Operations>E</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type></Type><Units/><Description/>
      </Item>
    </Resources>
    <Description2></Description2>
  </Object>
</LWM2M>
"""


def test_parse_ddf_11_schema_bom_cdata_and_order() -> None:
    (model,) = parse_ddf(DDF_11.encode("utf-8"))
    assert (model.id, model.name, model.version, model.lwm2m_version) == (42000, "Widget", "2.1", "1.1")
    assert model.multiple is False and model.mandatory is True
    assert [r.id for r in model.resources] == [0, 1]
    count = model.resource(1)
    assert count is not None
    assert count.type is ResourceType.UNSIGNED_INTEGER and count.multiple and count.writable
    assert (count.units, count.range) == ("s", "0..9")
    go = model.resource(0)
    assert go is not None and go.type is ResourceType.NONE and go.operations is Operations.EXECUTE


def test_parse_ddf_namespaced_and_defaults() -> None:
    doc = (
        '<LWM2M xmlns="urn:example"><Object><Name>N</Name><ObjectID>7</ObjectID>'
        "<Resources><Item ID='3'><Name>R</Name><Operations>r</Operations><Type>string</Type></Item>"
        "</Resources></Object></LWM2M>"
    )
    (model,) = parse_ddf(doc)
    assert (model.version, model.lwm2m_version, model.multiple) == ("1.0", "1.0", True)
    r = model.resource(3)
    assert r is not None and r.type is ResourceType.STRING and r.operations is Operations.READ


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"<LWM2M>",
        b"<LWM2M></LWM2M>",
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><LWM2M/>",
        b"<LWM2M><Object><ObjectID>x</ObjectID></Object></LWM2M>",
        b"<LWM2M><Object><ObjectID>70000</ObjectID></Object></LWM2M>",
        b"<LWM2M><Object><ObjectID>1</ObjectID><MultipleInstances>Maybe</MultipleInstances></Object></LWM2M>",
        b"<LWM2M><Object><ObjectID>1</ObjectID><Resources><Item ID='1'><Type>Blob</Type></Item></Resources>"
        b"</Object></LWM2M>",
        b"<LWM2M><Object><ObjectID>1</ObjectID><Resources><Item ID='1'><Operations>RX</Operations></Item>"
        b"</Resources></Object></LWM2M>",
        b"<LWM2M><Object><ObjectID>1</ObjectID><Resources><Item ID='1'/><Item ID='1'/></Resources>"
        b"</Object></LWM2M>",
    ],
)
def test_parse_ddf_rejects(doc: bytes) -> None:
    with pytest.raises(DdfError):
        parse_ddf(doc, "test.xml")


def test_load_errors(tmp_path: FsPath) -> None:
    with pytest.raises(DdfError):
        load_ddf_file(tmp_path / "missing.xml")
    with pytest.raises(DdfError):
        load_ddf_directory(tmp_path / "missing")


def test_registry_lookups_and_versions() -> None:
    reg = ObjectRegistry.builtin()
    assert 3303 in reg and 99999 not in reg
    assert len(reg) == len(builtin_models())
    model = reg.get(3303)
    assert model is not None and model.version == "1.1"
    assert reg.get(3303, "9.9") is model  # unknown version: newest known
    sensor = reg.resource_model(3303, 5700)
    assert sensor is not None and sensor.type is ResourceType.FLOAT
    assert reg.resource_model(3303, 1) is None
    assert next(iter(reg)).id == 0


def test_ddf_directory_overrides_builtin_per_version(tmp_path: FsPath) -> None:
    registry_dir = require_shared(DDF_REGISTRY)
    original = (registry_dir / "3303.xml").read_text(encoding="utf-8")
    # Same version: overrides the built-in. A new version: added beside it, and newest by default.
    (tmp_path / "3303.xml").write_text(original.replace(">Sensor Value<", ">Local Name<"), encoding="utf-8")
    v2 = original.replace("<ObjectVersion>1.1</ObjectVersion>", "<ObjectVersion>2.0</ObjectVersion>")
    (tmp_path / "3303-v2.XML").write_text(
        v2.replace("<Type>Float</Type>", "<Type>Integer</Type>", 1), "utf-8"
    )
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")

    reg = ObjectRegistry.with_ddf_directory(tmp_path)
    assert reg.versions(3303) == ("1.1", "2.0")
    v11 = reg.get(3303, "1.1")
    assert v11 is not None
    r = v11.resource(5700)
    assert r is not None and r.name == "Local Name"
    newest = reg.get(3303)
    assert newest is not None and newest.version == "2.0"
    assert reg.get(3) is not None  # built-ins still there

    only_dir = ObjectRegistry.with_ddf_directory(tmp_path, include_builtin=False)
    assert only_dir.get(3) is None

    bound = reg.for_versions({3303: "1.1", 3: None})
    assert isinstance(bound, VersionedLookup)
    model_11 = bound.resource_model(3303, 5700)
    assert model_11 is not None and model_11.name == "Local Name"
    assert bound.resource_model(3, 9) is not None
    assert bound.resource_model(3304, 5700) is not None  # not announced: registry default
