"""Ingress transforms in codec files (issue 19 §3): computed telemetry, enrichment, drop and rename — loaded
and checked once, exported into the template, applied on the wire with the rest of a record flowing when a
value cannot be computed."""

from __future__ import annotations

import logging
import math
from pathlib import Path as FsPath
from typing import Any

import pytest

from tests.codec.conftest import REPO
from tests.codec.dtdl_rules import problems
from translator.codec import CodecFileError, DeviceMapper, export_template, load_codec, parse_codec
from translator.codec.expressions import ExpressionError, NotComputable, compile_expression
from translator.codec.transform_loader import load_transform_file, load_transforms
from translator.codec.transforms import IngressRun
from translator.lwm2m import ObjectRegistry, Path, Record

CLIMATE = REPO / "docs" / "examples" / "climate.toml"
HEAD = '[template]\nid = "dtmi:test:climate;1"\n'
TEMPERATURE = '[[telemetry]]\npath = "/3303/0/5700"\nname = "temperature"\n'
HUMIDITY = '[[telemetry]]\npath = "/3304/0/5700"\nname = "humidity"\n'
ATTRIBUTES = {"Site": "Lyon", "building": "B2", "customer": "Contoso", "unused": "x"}


def _dew_point(t: float, h: float) -> float:
    g = math.log(h / 100) + 17.625 * t / (243.04 + t)
    return 243.04 * g / (17.625 - g)


# --- expressions --------------------------------------------------------------------------------------


def test_expression_is_parsed_once_and_evaluated_with_math() -> None:
    expression = compile_expression("max(0, sqrt(a) + log(b, 10)) * exp(0) - abs(-1)", {"a", "b"})
    assert expression.names == ("a", "b")
    assert expression.evaluate({"a": 16.0, "b": 100.0}) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("temperature +", "syntax error"),
        ("sin(temperature)", "unknown function 'sin'"),
        ("tempx * 2", "unknown name 'tempx'"),
        ("temperature.real", "attribute access is not allowed"),
        ("'a' * 3", "is not a number"),
        ("(lambda: 1)()", "calling a lambda is not allowed"),
        ("round(temperature, ndigits=1)", "keyword arguments"),
        ("temperature[0]", "subscript is not allowed"),
        ("__import__('os')", "unknown function '__import__'"),
    ],
)
def test_bad_expressions_are_refused_at_load(text: str, reason: str) -> None:
    with pytest.raises(ExpressionError, match=reason.replace("(", r"\(")):
        compile_expression(text, {"temperature"})


@pytest.mark.parametrize(
    ("values", "why"),
    [({"h": 0.0}, "ValueError"), ({"h": None}, "no value of h"), ({"h": -5.0}, "ValueError")],
)
def test_a_value_that_cannot_be_computed_says_why(values: dict[str, Any], why: str) -> None:
    with pytest.raises(NotComputable, match=why):
        compile_expression("log(h)", {"h"}).evaluate(values)


def test_huge_powers_are_refused_by_the_evaluator() -> None:
    with pytest.raises(NotComputable):
        compile_expression("x ** x ** x", {"x"}).evaluate({"x": 99})


# --- load-time errors: file, line and field -----------------------------------------------------------

ERRORS = [
    (
        "unknown resource name",
        HEAD + TEMPERATURE + '[[computed]]\nname = "f"\nexpression = "temprature * 2"\n',
        8,
        "computed[0].expression",
        "unknown name 'temprature' (known here: temperature)",
    ),
    (
        "syntax error",
        HEAD + TEMPERATURE + '[[computed]]\nname = "f"\n\nexpression = "temperature * (9 / 5"\n',
        9,
        "computed[0].expression",
        "syntax error at column",
    ),
    (
        "unknown function",
        HEAD + TEMPERATURE + '[[computed]]\nname = "f"\nexpression = "fahrenheit(temperature)"\n',
        8,
        "computed[0].expression",
        "unknown function 'fahrenheit'",
    ),
    (
        "unit of a boolean",
        HEAD + TEMPERATURE + '[[computed]]\nname = "hot"\nexpression = "temperature > 30"\n'
        'schema = "boolean"\nunit = "degreeCelsius"\n',
        10,
        "computed[0].unit",
        "type mismatch: a unit needs a numeric schema",
    ),
    (
        "unit of another quantity",
        HEAD + TEMPERATURE + '[[computed]]\nname = "f"\nexpression = "temperature"\n'
        'semanticType = "Temperature"\nunit = "volt"\n',
        10,
        "computed[0].unit",
        "'volt' is not a unit of Temperature",
    ),
    (
        "a string is no input",
        HEAD + '[[telemetry]]\npath = "/3303/0/5701"\nname = "units"\n'
        '[[computed]]\nname = "f"\nexpression = "units * 2"\n',
        8,
        "computed[0].expression",
        "type mismatch: 'units' is not a single number",
    ),
    (
        "name clash",
        HEAD + TEMPERATURE + '[[computed]]\nname = "temperature"\nexpression = "temperature"\n',
        7,
        "computed[0].name",
        "name clash",
    ),
    (
        "drop of nothing",
        HEAD + TEMPERATURE + '[transform]\ndrop = ["humidity"]\n',
        7,
        "transform.drop",
        "unknown telemetry 'humidity'",
    ),
    (
        "rename onto a name",
        HEAD + TEMPERATURE + HUMIDITY + '[transform]\nrename = { humidity = "temperature" }\n',
        10,
        "transform.rename",
        "name clash",
    ),
    (
        "drop of a property",
        HEAD + TEMPERATURE + '[[property]]\npath = "/3/0/0"\nname = "maker"\n[transform]\ndrop = ["maker"]\n',
        10,
        "transform.drop",
        "'maker' is a property: drop and rename apply to telemetry (inputs of expressions); leave its "
        "[[property]] table out",
    ),
    (
        "rename of a writable property",
        HEAD + TEMPERATURE + '[[property]]\npath = "/3311/0/5850"\nname = "power"\nwritable = true\n'
        '[transform]\nrename = { power = "onOff" }\n',
        11,
        "transform.rename",
        "'power' is a property: drop and rename apply to telemetry (inputs of expressions); set "
        'name = "onOff" in its [[property]]',
    ),
    (
        "rename of a command",
        HEAD + TEMPERATURE + '[[command]]\npath = "/3/0/4"\nname = "reboot"\noperation = "execute"\n'
        '[transform]\nrename = { reboot = "restart" }\n',
        11,
        "transform.rename",
        "'reboot' is a command: drop and rename apply to telemetry",
    ),
    (
        "drop of an enrichment",
        HEAD + TEMPERATURE + '[[enrichment]]\nname = "site"\n[transform]\ndrop = ["site"]\n',
        9,
        "transform.drop",
        "'site' is an enrichment: drop and rename apply to telemetry (inputs of expressions); leave its "
        "[[enrichment]] table out",
    ),
    (
        "rename onto an enrichment",
        HEAD
        + TEMPERATURE
        + '[[enrichment]]\nname = "site"\n[transform]\nrename = { temperature = "site" }\n',
        9,
        "transform.rename",
        "name clash: 'site' is already used",
    ),
    (
        "enrichment kind",
        HEAD + TEMPERATURE + '[[enrichment]]\nname = "site"\nas = "tag"\n',
        8,
        "enrichment[0].as",
        "'tag' is not property or telemetry",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_transform_errors_name_file_line_and_field(
    text: str, line: int, field: str, reason: str, registry: ObjectRegistry
) -> None:
    with pytest.raises(CodecFileError) as caught:
        parse_codec(text, registry, source="codecs/climate.toml")
    error = caught.value
    assert (error.line, error.field) == (line, field), str(error)
    assert reason in error.reason
    assert str(error).startswith(f"codecs/climate.toml:{line}: {field}: ")


# --- the template -------------------------------------------------------------------------------------


def test_template_shows_computed_enrichment_and_leaves_dropped_out(registry: ObjectRegistry) -> None:
    template = export_template(load_codec(CLIMATE, registry))
    assert problems(template) == []
    contents = {item["name"]: item for item in template[0]["contents"]}
    assert contents["dewPoint"] == {
        "@type": ["Telemetry", "Temperature"],
        "name": "dewPoint",
        "schema": "double",
        "unit": "degreeCelsius",
        "displayName": "Dew point",
    }
    assert contents["temperatureF"]["unit"] == "degreeFahrenheit"
    assert contents["supply"]["@type"] == ["Telemetry", "Voltage"]
    assert contents["site"] == {"@type": "Property", "name": "site", "schema": "string"}  # read-only
    assert contents["customer"] == {"@type": "Telemetry", "name": "customer", "schema": "string"}
    assert "adcRaw" not in contents  # dropped
    assert "humidity" not in contents
    assert contents["relativeHumidity"]["unit"] == "percent"  # renamed, with its unit


def test_transform_file_without_a_codec_checks_syntax_only() -> None:
    doc = {"computed": [{"name": "tempF", "expression": "temp * 1.8 + 32"}], "transform": {"drop": ["raw"]}}
    transforms = load_transforms(doc, "ttn.toml", None)
    run = IngressRun(transforms)
    assert run.message(None, {"temp": 20, "raw": 7}) == {"temp": 20, "tempF": 68.0}
    with pytest.raises(CodecFileError, match=r"computed\[0\]\.expression: unknown function"):
        load_transforms({"computed": [{"name": "x", "expression": "f(1)"}]}, "ttn.toml", None)


# --- on the wire --------------------------------------------------------------------------------------


def _mapper(registry: ObjectRegistry, attributes: dict[str, str] | None = ATTRIBUTES) -> DeviceMapper:
    return DeviceMapper(load_codec(CLIMATE, registry), device_id="dev1", attributes=attributes)


def test_computed_values_enrichment_drop_and_rename_on_the_wire(registry: ObjectRegistry) -> None:
    mapper = _mapper(registry)
    uplink = mapper.uplink(
        [
            Record(Path(3303, 0, 5700), 21.5),
            Record(Path(3304, 0, 5700), 55.0),
            Record(Path(3300, 0, 5700), 2048.0),
        ]
    )
    (message,) = uplink.telemetry
    assert message.values == {
        "temperature": 21.5,
        "relativeHumidity": 55.0,
        "dewPoint": pytest.approx(_dew_point(21.5, 55.0)),
        "temperatureF": pytest.approx(70.7),
        "supply": 1.65,
        "customer": "Contoso",
    }
    assert mapper.enrichment() == {"site": "Lyon", "building": "B2"}


def test_an_input_the_notification_lacks_comes_from_the_last_value(registry: ObjectRegistry) -> None:
    mapper = _mapper(registry)
    mapper.uplink([Record(Path(3304, 0, 5700), 40.0)])
    (message,) = mapper.uplink([Record(Path(3303, 0, 5700), 10.0)]).telemetry
    assert message.values["dewPoint"] == pytest.approx(_dew_point(10.0, 40.0))
    assert "supply" not in message.values  # none of its inputs in this message: nothing new to send


def test_a_value_that_cannot_be_computed_is_skipped_and_the_rest_flows(
    registry: ObjectRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    mapper = _mapper(registry)
    caplog.set_level(logging.WARNING, logger="translator.codec.transforms")
    for _ in range(12):  # humidity never seen: no dew point; humidity 0 later: a math domain error
        (message,) = mapper.uplink([Record(Path(3303, 0, 5700), 20.0)]).telemetry
        assert message.values["temperature"] == 20.0
        assert message.values["temperatureF"] == 68.0
        assert "dewPoint" not in message.values
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # the 1st and the 10th: rate-limited
    assert "dewPoint skipped (1 time so far): no value of humidity" in lines[0]
    assert "(10 times so far)" in lines[1]
    (message,) = mapper.uplink([Record(Path(3304, 0, 5700), 0.0)]).telemetry
    assert message.values == {"relativeHumidity": 0.0, "customer": "Contoso"}
    assert mapper.ingress.skipped_count == 13


def test_a_device_without_the_columns_gets_no_enrichment(registry: ObjectRegistry) -> None:
    mapper = _mapper(registry, attributes=None)
    (message,) = mapper.uplink([Record(Path(3303, 0, 5700), 20.0)]).telemetry
    assert "customer" not in message.values
    assert mapper.enrichment() is None


def test_a_transform_file_of_the_http_face(tmp_path: FsPath) -> None:
    file = tmp_path / "ttn.toml"
    file.write_text(
        '[[computed]]\nname = "tempF"\nexpression = "temp * 1.8 + 32"\n[transform]\ndrop = ["raw"]\n'
    )
    transforms = load_transform_file(file)
    assert IngressRun(transforms).message(None, {"temp": 0, "raw": 1}) == {"temp": 0, "tempF": 32.0}
    file.write_text('[[computed]]\nname = "tempF"\n\nexpression = "temp *"\n')
    with pytest.raises(CodecFileError, match=r"ttn\.toml:4: computed\[0\]\.expression: syntax error"):
        load_transform_file(file)
    file.write_text('[template]\nid = "dtmi:x:y;1"\n')
    with pytest.raises(CodecFileError, match=r"ttn\.toml:1: template: unknown table"):
        load_transform_file(file)
