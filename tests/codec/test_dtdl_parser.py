"""Every template we can export, validated by Microsoft's DTDL parser in one Node process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.codec.conftest import CODECS, REPO
from tests.codec.dtdl_parser import validate
from translator.codec import default_codec, dtdl, export_template, load_codec
from translator.lwm2m import ObjectRegistry
from translator.lwm2m import Path as LwPath


def _vocabulary() -> list[dict[str, Any]]:
    """One interface using every (semantic type, unit) pair and every OMA unit mapping we emit."""
    pairs = sorted(
        {(t, u) for t, units in dtdl.SEMANTIC_UNITS.items() for u in units} | set(dtdl.OMA_UNITS.values())
    )
    contents = [
        {"@type": ["Telemetry", t], "name": f"v{i}", "schema": "double", "unit": u}
        for i, (t, u) in enumerate(pairs)
    ]
    return [
        {
            "@context": dtdl.CONTEXT,
            "@id": "dtmi:iotcTranslator:test:vocabulary;1",
            "@type": "Interface",
            "contents": contents,
        }
    ]


def _broken() -> list[dict[str, Any]]:
    """A template the parser must refuse, so a parser that accepts everything cannot pass this test."""
    return [
        {
            "@context": dtdl.CONTEXT,
            "@id": "dtmi:iotcTranslator:test:broken;1",
            "@type": "Interface",
            "contents": [{"@type": "Telemetry", "name": "bad_", "schema": "double", "unit": "degreeCelsius"}],
        }
    ]


def test_microsoft_parser_accepts_every_template(
    dtdl_parser: Path, registry: ObjectRegistry, full_registry: ObjectRegistry
) -> None:
    templates: dict[str, list[dict[str, Any]]] = {"vocabulary": _vocabulary(), "broken": _broken()}
    overrides = []
    for path in CODECS:
        codec = load_codec(path, registry)
        overrides.append(codec)
        templates[f"codec {path.name}"] = export_template(codec)
    example = REPO / "docs" / "examples" / "climate.toml"  # computed telemetry, enrichment, drop, rename
    templates["example climate.toml"] = export_template(load_codec(example, registry))
    for model in full_registry:
        if model.id in (0, 21):
            continue
        codec = default_codec([LwPath(model.id, 0), LwPath(model.id, 1)], full_registry)
        templates[f"default /{model.id}"] = export_template(codec)
    everything = [LwPath(m.id, 0) for m in full_registry]
    templates["default, all objects"] = export_template(default_codec(everything, full_registry))
    templates["default with overrides"] = export_template(
        default_codec(
            [LwPath(o, 0) for o in (3, 4, 5, 6, 3300, 3303, 3304, 3311, 3313, 3323, 3328)],
            registry,
            overrides=overrides,
        )
    )

    results = validate(templates, dtdl_parser)

    broken = results.pop("broken")
    assert {e["id"] for e in broken} >= {"dtmi:dtdl:parsingError:stringInvalid"}, broken
    failures = {name: errors for name, errors in results.items() if errors}
    assert failures == {}
    assert len(results) == len(templates) - 1
