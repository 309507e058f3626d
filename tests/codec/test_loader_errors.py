"""A bad codec file fails at load, and the message names the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from translator.codec import CodecFileError, load_codec, parse_codec
from translator.lwm2m import ObjectRegistry

HEAD = '[template]\nid = "dtmi:test:codec;1"\n'
SENSOR = HEAD + '[[component]]\nname = "temp"\npath = "/3303/0"\n'

CASES = [
    ("not toml", "[template", "(file)", "not valid TOML"),
    ("no template", "", "template", "missing [template]"),
    ("bad model id", '[template]\nid = "urn:x"\n', "template.id", "is not a DTMI"),
    (
        "typo key",
        HEAD + '[[telemetry]]\npath = "/3/*/9"\nname = "b"\npmni = 3\n',
        "telemetry[0].pmni",
        "unknown key",
    ),
    (
        "unknown object",
        HEAD + '[[telemetry]]\npath = "/65000/*/1"\nname = "x"\n',
        "telemetry[0].path",
        "unknown object 65000",
    ),
    (
        "unknown resource",
        HEAD + '[[property]]\npath = "/3/0/999"\nname = "x"\n',
        "property[0].path",
        "has no resource 999",
    ),
    ("bad path", HEAD + '[[property]]\npath = "3/0/1"\nname = "x"\n', "property[0].path", "is not /object"),
    (
        "bad name",
        HEAD + '[[property]]\npath = "/3/0/0"\nname = "9lives"\n',
        "property[0].name",
        "is not a DTDL name",
    ),
    (
        "name clash",
        HEAD + '[[property]]\npath = "/3/0/0"\nname = "x"\n[[property]]\npath = "/3/0/1"\nname = "x"\n',
        "root interface",
        "name clash: x",
    ),
    (
        "clash across kinds",
        SENSOR + '[[telemetry]]\npath = "/3303/*/5700"\nname = "v"\n'
        '[[command]]\nname = "v"\noperation = "execute"\npath = "/3303/*/5605"\n',
        "component 'temp'",
        "name clash: v",
    ),
    (
        "unit type mismatch",
        HEAD + '[[property]]\npath = "/3/0/0"\nname = "m"\nunit = "volt"\n',
        "property[0].unit",
        "type mismatch",
    ),
    (
        "wrong unit",
        SENSOR + '[[telemetry]]\npath = "/3303/*/5700"\nname = "t"\nsemanticType = "Temperature"\n'
        'unit = "volt"\n',
        "telemetry[0].unit",
        "not a unit of Temperature",
    ),
    (
        "unknown unit",
        SENSOR + '[[telemetry]]\npath = "/3303/*/5700"\nname = "t"\nunit = "furlong"\n',
        "telemetry[0].unit",
        "not a DTDL v2 semantic unit",
    ),
    (
        "not writable",
        HEAD + '[[property]]\npath = "/3/0/0"\nname = "m"\nwritable = true\n',
        "property[0].writable",
        "not writable",
    ),
    (
        "telemetry not readable",
        HEAD + '[[telemetry]]\npath = "/3/0/4"\nname = "r"\n',
        "telemetry[0].path",
        "not readable",
    ),
    (
        "execute a value",
        HEAD + '[[command]]\nname = "c"\noperation = "execute"\npath = "/3/0/0"\n',
        "command[0].operation",
        "does not allow execute",
    ),
    (
        "bad operation",
        HEAD + '[[command]]\nname = "c"\noperation = "delete"\npath = "/3/0/4"\n',
        "command[0].operation",
        "is not execute, read or write",
    ),
    (
        "scale on a string",
        HEAD + '[[property]]\npath = "/3/0/0"\nname = "m"\nscale = 2\n',
        "property[0].scale",
        "type mismatch",
    ),
    (
        "pmax below pmin",
        HEAD + '[[telemetry]]\npath = "/3/*/9"\nname = "b"\npmin = 10\npmax = 5\n',
        "telemetry[0].pmax",
        "pmin",
    ),
    (
        "wildcard at root on a multiple object",
        HEAD + '[[telemetry]]\npath = "/3303/*/5700"\nname = "t"\n',
        "telemetry[0].path",
        "needs a [[component]] per instance",
    ),
    (
        "unknown component",
        SENSOR + '[[telemetry]]\npath = "/3303/*/5700"\nname = "t"\ncomponent = "nope"\n',
        "telemetry[0].component",
        "unknown component",
    ),
    (
        "component of another object",
        SENSOR + '[[property]]\npath = "/3/0/0"\nname = "m"\ncomponent = "temp"\n',
        "property[0].component",
        "is /3303/0",
    ),
    (
        "two components, one instance",
        SENSOR + '[[component]]\nname = "other"\npath = "/3303/0"\n',
        "component[1].path",
        "already has component",
    ),
    (
        "duplicate component name",
        SENSOR + '[[component]]\nname = "temp"\npath = "/3303/1"\n',
        "component[1].name",
        "declared twice",
    ),
    (
        "argument digit",
        HEAD + '[[command]]\nname = "c"\noperation = "execute"\npath = "/3/0/4"\n'
        'arguments = [{ name = "a", digit = 12 }]\n',
        "command[0].arguments[0].digit",
        "0-9",
    ),
    (
        "resource mapped twice",
        HEAD + '[[property]]\npath = "/3/0/9"\nname = "a"\n[[telemetry]]\npath = "/3/*/9"\nname = "b"\n',
        "a",
        "/3/0/9 is already mapped to 'b'",
    ),
]


@pytest.mark.parametrize(("text", "field", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_codec_names_file_field_and_reason(
    text: str, field: str, reason: str, registry: ObjectRegistry
) -> None:
    with pytest.raises(CodecFileError) as caught:
        parse_codec(text, registry, source="codecs/bad.toml")
    error = caught.value
    assert error.source == "codecs/bad.toml"
    assert error.field == field
    assert reason in error.reason
    where = "codecs/bad.toml" if error.line is None else f"codecs/bad.toml:{error.line}"
    assert str(error).startswith(f"{where}: {field}: ")


def test_load_codec_names_the_file(tmp_path: Path, registry: ObjectRegistry) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text(HEAD + '[[property]]\npath = "/3/0/0"\nname = "bad name"\n')
    with pytest.raises(
        CodecFileError, match=r"broken\.toml:5: property\[0\]\.name: 'bad name' is not a DTDL name"
    ):
        load_codec(bad, registry)
    with pytest.raises(CodecFileError, match="cannot read"):
        load_codec(tmp_path / "missing.toml", registry)


def test_wildcards_bind_per_component(registry: ObjectRegistry) -> None:
    text = (
        SENSOR
        + '[[component]]\nname = "temp2"\npath = "/3303/1"\n'
        + '[[telemetry]]\npath = "/3303/*/5700"\nname = "t"\n'
    )
    codec = parse_codec(text, registry)
    assert [(t.component, str(t.pattern)) for t in codec.telemetry] == [
        ("temp", "/3303/0/5700"),
        ("temp2", "/3303/1/5700"),
    ]


def test_root_wildcard_on_single_instance_object_binds_instance_0(registry: ObjectRegistry) -> None:
    codec = parse_codec(HEAD + '[[property]]\npath = "/3/*/0"\nname = "m"\n', registry)
    assert str(codec.properties[0].pattern) == "/3/0/0"
