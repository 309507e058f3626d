"""Typed downlink requests → the CoAP message each sends. Pure: no socket."""

from __future__ import annotations

import pytest

from translator.coap import wire
from translator.coap.errors import Code
from translator.coap.requests import (
    OBSERVE_DEREGISTER,
    OBSERVE_REGISTER,
    CancelObservation,
    CoapMessage,
    Create,
    Delete,
    Discover,
    Execute,
    Read,
    ReadComposite,
    Write,
    WriteAttributes,
    observe_message,
)
from translator.coap.state import Observation
from translator.lwm2m import ContentFormat, ObjectRegistry, Path, Record, decode

LOOKUP = ObjectRegistry.builtin().for_versions({1: None, 3: None, 3303: None})
TEMPERATURE = Path(3303, 0, 5700)


def on_the_wire(message: CoapMessage) -> wire.Datagram:
    """The message as the tap sends it, parsed back by the hot path's parser."""
    options = sorted(message.options(), key=lambda o: o[0])
    parsed = wire.parse(wire.encode(wire.CON, message.code, 7, b"tok", options, message.payload))
    assert parsed is not None and not parsed.fault
    return parsed


def test_read_asks_for_the_format_and_remembers_by_depth() -> None:
    read = Read(TEMPERATURE)
    message = read.message(ContentFormat.SENML_CBOR)
    assert message == CoapMessage(Code.GET, TEMPERATURE, accept=ContentFormat.SENML_CBOR)
    parsed = on_the_wire(message)
    assert (parsed.uri_path, parsed.accept, parsed.content_format, parsed.observe) == (
        ["3303", "0", "5700"],
        ContentFormat.SENML_CBOR,
        None,
        None,
    )
    assert (read.name, read.kind, Read(Path(3)).kind) == ("read /3303/0/5700", "read3", "read1")
    assert read.refusal() is None


def test_discover_and_delete() -> None:
    assert Discover(Path(3, 0)).message() == CoapMessage(
        Code.GET, Path(3, 0), accept=ContentFormat.LINK_FORMAT
    )
    assert Delete(Path(3303, 1)).message() == CoapMessage(Code.DELETE, Path(3303, 1))


def test_write_replaces_or_updates_and_encodes_its_records() -> None:
    records = (Record(Path(3303, 0, 5601), 1.5), Record(Path(3303, 0, 5602), 30.0))
    replace = Write(Path(3303, 0), records)
    update = Write(Path(3303, 0), records, partial=True)
    assert replace.message(ContentFormat.SENML_JSON, LOOKUP).code == Code.PUT
    message = update.message(ContentFormat.SENML_JSON, LOOKUP)
    assert (message.code, message.content_format) == (Code.POST, ContentFormat.SENML_JSON)
    back = decode(ContentFormat.SENML_JSON, message.payload, base_path=Path(3303, 0), registry=LOOKUP)
    assert back == list(records)
    assert (replace.name, update.name) == ("write /3303/0", "write-update /3303/0")
    assert (replace.kind, Write(TEMPERATURE, (Record(TEMPERATURE, 1.0),)).kind) == ("write20", "write31")


def test_write_of_a_lifetime_this_server_would_refuse_is_refused_before_sending() -> None:
    bad = Write(Path(1, 0), (Record(Path(1, 0, 1), -5),))
    assert bad.lifetime == -5
    problem = bad.refusal()
    assert problem is not None and "would refuse at Register" in problem
    good = Write(Path(1, 0), (Record(Path(1, 0, 1), 600.0),))
    assert (good.lifetime, good.refusal()) == (600, None)
    assert Write(TEMPERATURE, (Record(TEMPERATURE, -5),)).lifetime is None


def test_execute_carries_arguments_as_text() -> None:
    with_args = Execute(Path(3, 0, 4), "0='now',1").message()
    assert (with_args.code, with_args.content_format, with_args.payload) == (
        Code.POST,
        ContentFormat.TEXT,
        b"0='now',1",
    )
    bare = on_the_wire(Execute(Path(3, 0, 4)).message())
    assert (bare.code, bare.uri_path, bare.content_format, bare.payload) == (
        Code.POST,
        ["3", "0", "4"],
        None,
        b"",
    )
    with pytest.raises(ValueError, match="resource"):
        Execute(Path(3, 0))


def test_write_attributes_query() -> None:
    request = WriteAttributes.of(TEMPERATURE, {"pmin": 1, "pmax": 5, "st": 0.5, "gt": None})
    assert request.query == ("pmin=1", "pmax=5", "st=0.5", "gt")
    parsed = on_the_wire(request.message())
    assert (parsed.code, parsed.uri_query, parsed.payload) == (
        Code.PUT,
        ["pmin=1", "pmax=5", "st=0.5", "gt"],
        b"",
    )
    with pytest.raises(ValueError, match="unknown attribute"):
        WriteAttributes.of(TEMPERATURE, {"period": 5})


def test_create_places_records_in_the_requested_instance_and_reads_the_location() -> None:
    request = Create(3303, (Record(Path(3303, 9, 5700), 5.0),), instance_id=1)
    message = request.message(ContentFormat.SENML_JSON, LOOKUP)
    assert (message.code, message.path) == (Code.POST, Path(3303))
    back = decode(ContentFormat.SENML_JSON, message.payload, base_path=Path(3303, 1), registry=LOOKUP)
    assert back == [Record(Path(3303, 1, 5700), 5.0)]
    assert request.created(["3303", "4"]) == Path(3303, 4)  # the device's choice wins
    assert request.created([]) == Path(3303, 1)
    free = Create(3303, (Record(Path(3303, 2, 5700), 5.0),))
    assert (free.created([""]), Create(3303, ()).created([])) == (Path(3303, 2), Path(3303))


def test_composite_messages_fetch_the_paths() -> None:
    paths = (TEMPERATURE, Path(3, 0, 9))
    message = ReadComposite(paths).message(ContentFormat.SENML_CBOR)
    parsed = on_the_wire(message)
    assert (parsed.code, parsed.uri_path, parsed.accept, parsed.content_format, parsed.observe) == (
        Code.FETCH,
        [],
        ContentFormat.SENML_CBOR,
        ContentFormat.SENML_CBOR,
        None,
    )
    assert [r.path for r in decode(ContentFormat.SENML_CBOR, parsed.payload, base_path=Path())] == list(paths)


def test_observe_and_its_cancellation_differ_only_in_the_observe_option() -> None:
    single = observe_message((TEMPERATURE,), False, ContentFormat.TEXT, OBSERVE_REGISTER)
    assert single == CoapMessage(Code.GET, TEMPERATURE, accept=ContentFormat.TEXT, observe=0)
    composite = observe_message(
        (TEMPERATURE, Path(3, 0, 9)), True, ContentFormat.SENML_JSON, OBSERVE_REGISTER
    )
    assert (composite.code, composite.observe, composite.content_format) == (
        Code.FETCH,
        0,
        ContentFormat.SENML_JSON,
    )
    for paths, is_composite, cf in (
        ((single.path,), False, ContentFormat.TEXT),
        (
            (TEMPERATURE, Path(3, 0, 9)),
            True,
            ContentFormat.SENML_JSON,
        ),
    ):
        obs = Observation("ep", "r1", paths, b"tok", cf, is_composite)
        cancel = CancelObservation(obs).message()
        register = observe_message(paths, is_composite, cf, OBSERVE_REGISTER)
        assert cancel.observe == OBSERVE_DEREGISTER
        assert on_the_wire(cancel).payload == on_the_wire(register).payload
        assert cancel.path == register.path and cancel.accept == register.accept
