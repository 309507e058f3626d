"""The CoAP face's own decoders (Send, plain CBOR ingest, Register payload and query) under random and
hostile input: only the face's typed errors come out, each maps to a 4.xx (never 5.00), and whatever is
accepted can travel on (finite numbers, times 1970..9999)."""

from __future__ import annotations

import math

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.coap import NamedRecord, TelemetryRecord
from translator.coap.errors import RequestRejected, answer_for
from translator.coap.ingest import decode_ingest, decode_send
from translator.coap.registration import parse_objects, parse_query
from translator.lwm2m import ContentFormat, Lwm2mFormatError, ObjectRegistry, Record
from translator.lwm2m.representable import MAX_TIME, MIN_TIME

NOW = 1.7e9
REGISTRY = ObjectRegistry.builtin()
TYPED = (RequestRejected, Lwm2mFormatError)


def _device_error(exc: BaseException) -> None:
    assert isinstance(exc, TYPED), repr(exc)
    code, reason, _ = answer_for(exc)
    assert code >> 5 == 4 and reason, (code, reason)


def _can_travel(records: list[TelemetryRecord] | list[Record]) -> None:
    for record in records:
        assert isinstance(record, Record | NamedRecord)
        if isinstance(record.value, float):
            assert math.isfinite(record.value), record
        if record.time is not None:
            assert MIN_TIME <= record.time <= MAX_TIME, record


numbers = st.one_of(
    st.floats(),
    st.integers(-(2**80), 2**80),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e20, -1e20, MAX_TIME + 1, 2**1100]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8), st.binary(max_size=8))
keys = st.one_of(st.sampled_from(["t", "temperature", "/3303/0/5700", "/bad", "", "x" * 300]), st.integers())
readings = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=16,
)


def _ingest(payload: bytes, content_format: int | None = 60) -> None:
    try:
        records = decode_ingest(content_format, payload, now=NOW, max_payload=4096)
    except Exception as exc:
        _device_error(exc)
        return
    _can_travel(records)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=readings)
def test_ingest_structured(doc: object) -> None:
    _ingest(cbor2.dumps(doc))


# Well-formed readings, so the numbers themselves are what is tested.
flat = st.fixed_dictionaries(
    {"temperature": numbers}, optional={"t": numbers, "/3303/0/5700": numbers, "door": st.booleans()}
)


@settings(max_examples=300, deadline=None)
@given(doc=st.one_of(flat, st.lists(flat, min_size=1, max_size=4)))
def test_ingest_numbers(doc: object) -> None:
    _ingest(cbor2.dumps(doc))


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=300), cf=st.sampled_from([None, 60, 0, 110]))
def test_ingest_arbitrary_bytes(payload: bytes, cf: int | None) -> None:
    _ingest(payload, cf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.one_of(st.binary(max_size=300), readings.map(cbor2.dumps)),
    cf=st.sampled_from([None, *sorted(ContentFormat)]),
)
def test_send_anything(payload: bytes, cf: int | None) -> None:
    try:
        records = decode_send(cf, payload, registry=REGISTRY, now=NOW, max_payload=4096)
    except Exception as exc:
        _device_error(exc)
        return
    _can_travel(records)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from(["</3/0>", "</3303/", ">,<", ";ver=", "ct=", '"', "1", "\x00", "</"]))
        .map("".join)
        .map(str.encode),
    ),
    cf=st.sampled_from([None, 40, 0, 60]),
    query=st.lists(st.text(max_size=12), max_size=5),
)
def test_registration_anything(payload: bytes, cf: int | None, query: list[str]) -> None:
    for parse in (lambda: parse_objects(cf, payload), lambda: parse_query(query)):
        try:
            parse()
        except Exception as exc:
            _device_error(exc)
