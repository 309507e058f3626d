"""The DTDL v2 vocabulary the codec relies on: identifiers, primitive schemas, semantic types and units.

Facts from the DTDL v2 language description; the tests check our exported templates against these rules
in Python (so a failure is explained) and against Microsoft's parser (so they are the real rules).
"""

from __future__ import annotations

import re
from typing import Any, Final

from translator.lwm2m import ResourceModel, ResourceType

CONTEXT: Final = "dtmi:dtdl:context;2"
# IoT Central's extension of DTDL v2: the geopoint and vector schemas and their adjunct types
# (https://learn.microsoft.com/azure/iot-central/core/howto-use-location-data; Azure/opendigitaltwins-dtdl
# DTDL/v2/DTDL.iotcentral.v2.md).
IOTC_CONTEXT: Final = "dtmi:iotcentral:context;2"
# The adjunct type a vector of this semantic type takes (its unit must then be of that type).
VECTOR_ADJUNCTS: Final = {"Acceleration": "AccelerationVector", "Velocity": "VelocityVector"}
MAX_INTERFACE_ID: Final = 128
MAX_CONTENTS: Final = 300
# IoT Central: at most 300 capabilities in a device template, all components together
# (https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits#device-modeling).
MAX_TEMPLATE_CAPABILITIES: Final = 300
MAX_DISPLAY_NAME: Final = 64
MAX_DESCRIPTION: Final = 512

# A user DTMI: segments start with a letter, hold letters/digits/underscores, do not end with `_`;
# the version is 1-9 digits without a leading zero.
_SEGMENT = r"[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?"
_DTMI = re.compile(rf"dtmi:{_SEGMENT}(?::{_SEGMENT})*;[1-9][0-9]{{0,8}}")


def is_dtmi(text: str, max_length: int = MAX_INTERFACE_ID) -> bool:
    return len(text) <= max_length and _DTMI.fullmatch(text) is not None


def dtmi_parts(dtmi: str) -> tuple[str, int]:
    """`dtmi:a:b;3` → (`dtmi:a:b`, 3); the caller has checked `is_dtmi`."""
    path, _, version = dtmi.rpartition(";")
    return path, int(version)


NUMERIC_SCHEMAS: Final = frozenset({"double", "float", "integer", "long"})

# LwM2M resource types as DTDL schemas. Integers are 64-bit in LwM2M, hence `long`; Opaque travels as
# base64 text because IoT Central has no bytes schema; object links as their `3303:0` text form.
_SCHEMAS: Final[dict[ResourceType, str]] = {
    ResourceType.STRING: "string",
    ResourceType.INTEGER: "long",
    ResourceType.UNSIGNED_INTEGER: "long",
    ResourceType.FLOAT: "double",
    ResourceType.BOOLEAN: "boolean",
    ResourceType.OPAQUE: "string",
    ResourceType.TIME: "dateTime",
    ResourceType.OBJLNK: "string",
    ResourceType.CORELNK: "string",
}


def primitive_schema(resource_type: ResourceType) -> str | None:
    """The DTDL schema of one value of this type; None for `none` (executables)."""
    return _SCHEMAS.get(resource_type)


def value_schema(resource: ResourceModel, *, scaled: bool = False) -> Any:
    """The schema of a whole resource: a primitive, or a map keyed by resource instance id.

    A multiple resource becomes a Map rather than an Array because properties may not hold arrays and
    because instance ids are sparse. A scaled integer becomes `double`.
    """
    primitive = primitive_schema(resource.type)
    if primitive is None:
        raise ValueError(f"resource {resource.id} ({resource.type.value}) has no value schema")
    if scaled and primitive == "long":
        primitive = "double"
    if not resource.multiple:
        return primitive
    return {
        "@type": "Map",
        "mapKey": {"name": "instance", "schema": "string"},
        "mapValue": {"name": "value", "schema": primitive},
    }


# Semantic types that share a unit vocabulary (DTDL v2 LengthUnit, AngleUnit).
_LENGTH_UNITS = frozenset(
    {
        "metre",
        "centimetre",
        "millimetre",
        "micrometre",
        "nanometre",
        "kilometre",
        "foot",
        "inch",
        "mile",
        "nauticalMile",
    }
)
_ANGLE_UNITS = frozenset({"radian", "degreeOfArc", "minuteOfArc", "secondOfArc", "turn"})


# Semantic types and their units (DTDL v2). `RelativeHumidity` is unitless: `percent` or `unity`.
SEMANTIC_UNITS: Final[dict[str, frozenset[str]]] = {
    "Acceleration": frozenset({"metrePerSecondSquared", "centimetrePerSecondSquared", "gForce"}),
    "Angle": _ANGLE_UNITS,
    "AngularVelocity": frozenset(
        {"radianPerSecond", "degreePerSecond", "revolutionPerSecond", "revolutionPerMinute"}
    ),
    "Area": frozenset({"squareMetre", "squareCentimetre", "squareMillimetre", "squareKilometre", "hectare"}),
    "Current": frozenset({"ampere", "microampere", "milliampere"}),
    "DataRate": frozenset(
        {
            "bitPerSecond",
            "kibibitPerSecond",
            "mebibitPerSecond",
            "bytePerSecond",
            "kibibytePerSecond",
            "mebibytePerSecond",
        }
    ),
    "DataSize": frozenset(
        {"bit", "kibibit", "mebibit", "gibibit", "byte", "kibibyte", "mebibyte", "gibibyte"}
    ),
    "Density": frozenset({"kilogramPerCubicMetre", "gramPerCubicMetre"}),
    "Distance": _LENGTH_UNITS,
    "ElectricCharge": frozenset({"coulomb"}),
    "Energy": frozenset(
        {"joule", "kilojoule", "megajoule", "gigajoule", "electronvolt", "megaelectronvolt", "kilowattHour"}
    ),
    "Force": frozenset({"newton", "pound", "ounce", "ton"}),
    "Frequency": frozenset({"hertz", "kilohertz", "megahertz", "gigahertz"}),
    "Humidity": frozenset({"kilogramPerCubicMetre", "gramPerCubicMetre"}),
    "Illuminance": frozenset({"lux", "footcandle"}),
    "Latitude": _ANGLE_UNITS,
    "Longitude": _ANGLE_UNITS,
    "Length": _LENGTH_UNITS,
    "LuminousFlux": frozenset({"lumen"}),
    "Mass": frozenset({"kilogram", "gram", "milligram", "microgram", "tonne"}),
    "Power": frozenset({"watt", "microwatt", "milliwatt", "kilowatt", "megawatt", "gigawatt", "horsepower"}),
    "Pressure": frozenset(
        {
            "pascal",
            "kilopascal",
            "bar",
            "millibar",
            "millimetresOfMercury",
            "poundPerSquareInch",
            "inchesOfMercury",
            "inchesOfWater",
        }
    ),
    "RelativeHumidity": frozenset({"percent", "unity"}),
    "Resistance": frozenset({"ohm", "milliohm", "kiloohm", "megaohm"}),
    "SoundPressure": frozenset({"decibel", "bel"}),
    "Temperature": frozenset({"kelvin", "degreeCelsius", "degreeFahrenheit"}),
    "TimeSpan": frozenset(
        {"second", "millisecond", "microsecond", "nanosecond", "minute", "hour", "day", "year"}
    ),
    "Velocity": frozenset(
        {
            "metrePerSecond",
            "centimetrePerSecond",
            "kilometrePerSecond",
            "metrePerHour",
            "kilometrePerHour",
            "milePerHour",
            "knot",
        }
    ),
    "Voltage": frozenset({"volt", "millivolt", "microvolt", "kilovolt", "megavolt"}),
    "Volume": frozenset({"cubicMetre", "cubicCentimetre", "litre", "millilitre"}),
}

# The semantic type a unit implies when a codec names only the unit. Ambiguous units pick the general
# type (degreeOfArc → Angle; a codec says `semanticType = "Latitude"` when it means that).
_PREFERRED_TYPE: Final = ("Distance", "Angle", "Density", "RelativeHumidity")
UNIT_TYPES: Final[dict[str, str]] = {}
for _type, _units in sorted(SEMANTIC_UNITS.items(), key=lambda kv: (kv[0] not in _PREFERRED_TYPE, kv[0])):
    for _unit in sorted(_units):
        UNIT_TYPES.setdefault(_unit, _type)

# OMA (UCUM / SenML) unit strings with an exact DTDL equivalent. Units without one (dBm, var, ppm,
# /100, GB, Wh…) stay out: a wrong semantic unit is worse than none. `hPa` is exactly `millibar`.
OMA_UNITS: Final[dict[str, tuple[str, str]]] = {
    "Cel": ("Temperature", "degreeCelsius"),
    "K": ("Temperature", "kelvin"),
    "%RH": ("RelativeHumidity", "percent"),
    "Pa": ("Pressure", "pascal"),
    "hPa": ("Pressure", "millibar"),
    "kPa": ("Pressure", "kilopascal"),
    "bar": ("Pressure", "bar"),
    "lx": ("Illuminance", "lux"),
    "lm": ("LuminousFlux", "lumen"),
    "m/s2": ("Acceleration", "metrePerSecondSquared"),
    "W": ("Power", "watt"),
    "kW": ("Power", "kilowatt"),
    "J": ("Energy", "joule"),
    "Ws": ("Energy", "joule"),
    "kWh": ("Energy", "kilowattHour"),
    "V": ("Voltage", "volt"),
    "mV": ("Voltage", "millivolt"),
    "A": ("Current", "ampere"),
    "mA": ("Current", "milliampere"),
    "C": ("ElectricCharge", "coulomb"),
    "Ohm": ("Resistance", "ohm"),
    "m": ("Distance", "metre"),
    "cm": ("Distance", "centimetre"),
    "mm": ("Distance", "millimetre"),
    "km": ("Distance", "kilometre"),
    "m2": ("Area", "squareMetre"),
    "m3": ("Volume", "cubicMetre"),
    "l": ("Volume", "litre"),
    "s": ("TimeSpan", "second"),
    "ms": ("TimeSpan", "millisecond"),
    "min": ("TimeSpan", "minute"),
    "h": ("TimeSpan", "hour"),
    "d": ("TimeSpan", "day"),
    "Hz": ("Frequency", "hertz"),
    "kHz": ("Frequency", "kilohertz"),
    "MHz": ("Frequency", "megahertz"),
    "rad": ("Angle", "radian"),
    "deg": ("Angle", "degreeOfArc"),
    "lat": ("Latitude", "degreeOfArc"),
    "lon": ("Longitude", "degreeOfArc"),
    "m/s": ("Velocity", "metrePerSecond"),
    "m/h": ("Velocity", "metrePerHour"),
    "km/h": ("Velocity", "kilometrePerHour"),
    "B": ("DataSize", "byte"),
    "KiB": ("DataSize", "kibibyte"),
    "bit/s": ("DataRate", "bitPerSecond"),
    "B/s": ("DataRate", "bytePerSecond"),
    "kg": ("Mass", "kilogram"),
    "g": ("Mass", "gram"),
    "N": ("Force", "newton"),
}


def oma_unit(resource: ResourceModel) -> tuple[str, str] | None:
    """The (semantic type, unit) an OMA unit maps to, for a single numeric resource; else None."""
    if resource.multiple or primitive_schema(resource.type) not in NUMERIC_SCHEMAS:
        return None
    return OMA_UNITS.get(resource.units.strip())


def semantic_unit(unit: str, semantic_type: str | None) -> tuple[str, str]:
    """Check a codec's `unit` / `semanticType` pair; returns (semantic type, unit) or raises ValueError."""
    if semantic_type is None:
        found = UNIT_TYPES.get(unit)
        if found is None:
            raise ValueError(f"{unit!r} is not a DTDL v2 semantic unit")
        return found, unit
    allowed = SEMANTIC_UNITS.get(semantic_type)
    if allowed is None:
        raise ValueError(f"{semantic_type!r} is not a DTDL v2 semantic type")
    if unit not in allowed:
        raise ValueError(f"{unit!r} is not a unit of {semantic_type} (one of {', '.join(sorted(allowed))})")
    return semantic_type, unit
