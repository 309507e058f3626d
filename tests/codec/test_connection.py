"""A codec file's `connection`: "ephemeral" marks its devices telemetry-only, and a codec that says so may
declare no command or property (nothing an ephemeral device could honour reaches its template)."""

from __future__ import annotations

import pytest

from translator.codec import CodecFileError, parse_codec
from translator.codec.export import export_template
from translator.lwm2m import ObjectRegistry

HEAD = '[template]\nid = "dtmi:test:sleepy;1"\nconnection = "{}"\n'
TELEMETRY = '[[telemetry]]\npath = "/3303/0/5700"\nname = "temperature"\n'


def test_default_is_persistent_and_ephemeral_is_read() -> None:
    registry = ObjectRegistry.builtin()
    plain = parse_codec('[template]\nid = "dtmi:test:plain;1"\n' + TELEMETRY, registry)
    assert plain.connection == "persistent"
    sleepy = parse_codec(HEAD.format("ephemeral") + TELEMETRY, registry)
    assert sleepy.connection == "ephemeral"
    assert [c["name"] for c in export_template(sleepy)[0]["contents"]] == ["temperature"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            '[[command]]\npath = "/3/0/4"\nname = "reboot"\noperation = "execute"\n',
            "command 'reboot'",
            "an ephemeral device takes no command",
        ),
        (
            '[[property]]\npath = "/3/0/0"\nname = "maker"\n',
            "property 'maker'",
            "an ephemeral device reports and takes no property",
        ),
    ],
)
def test_ephemeral_codec_with_command_or_property_is_refused(body: str, field: str, reason: str) -> None:
    with pytest.raises(CodecFileError) as refused:
        parse_codec(
            HEAD.format("ephemeral") + TELEMETRY + body, ObjectRegistry.builtin(), source="sleepy.toml"
        )
    assert refused.value.source == "sleepy.toml"
    assert refused.value.field == field
    assert reason in refused.value.reason


def test_an_unknown_connection_is_refused() -> None:
    with pytest.raises(CodecFileError, match=r"template\.connection: 'sometimes' is not one of"):
        parse_codec(HEAD.format("sometimes") + TELEMETRY, ObjectRegistry.builtin())


def test_ephemeral_codec_with_an_enrichment_property_is_refused_at_its_line() -> None:
    """An enrichment is a read-only property unless `as = "telemetry"`: an ephemeral device has no twin."""
    enrichment = '[[enrichment]]\nname = "site"\n'
    with pytest.raises(CodecFileError) as refused:
        parse_codec(HEAD.format("ephemeral") + TELEMETRY + enrichment, ObjectRegistry.builtin())
    assert (refused.value.field, refused.value.line) == ("enrichment[0].as", 7)  # its [[enrichment]] header
    assert 'as = "telemetry"' in refused.value.reason
    sent = parse_codec(
        HEAD.format("ephemeral") + TELEMETRY + enrichment + 'as = "telemetry"\n', ObjectRegistry.builtin()
    )
    assert [e.name for e in sent.transforms.enrichments] == ["site"]
