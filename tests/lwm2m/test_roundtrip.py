"""hypothesis: encode -> decode gives the records back, for every format and resource type."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.lwm2m import ROOT, ContentFormat, Path, Record, ResourceType, decode, encode
from translator.lwm2m.paths import common_prefix

from .support import SINGLE_RID, TEST_OBJECT, VALUE_TYPES, record_sets, registry, single_record, typed

ALL_VALUE_FORMATS = [
    ContentFormat.TEXT,
    ContentFormat.CBOR,
    ContentFormat.TLV,
    ContentFormat.SENML_JSON,
    ContentFormat.SENML_CBOR,
    ContentFormat.LWM2M_JSON,
    ContentFormat.LWM2M_CBOR,
]
MULTI_FORMATS = [
    ContentFormat.TLV,
    ContentFormat.SENML_JSON,
    ContentFormat.SENML_CBOR,
    ContentFormat.LWM2M_JSON,
    ContentFormat.LWM2M_CBOR,
]
TIMED_FORMATS = [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR, ContentFormat.LWM2M_JSON]
# Formats that group by path (a tree), so the payload order is tree order.
TREE_FORMATS = {ContentFormat.TLV, ContentFormat.LWM2M_CBOR}


@pytest.mark.parametrize("rtype", VALUE_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("cf", ALL_VALUE_FORMATS, ids=lambda cf: cf.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_single_value_round_trip(cf: ContentFormat, rtype: ResourceType, data: st.DataObject) -> None:
    record = data.draw(single_record(rtype))
    payload = encode(cf, [record], registry=registry())
    assert typed(decode(cf, payload, base_path=record.path, registry=registry())) == typed([record])


@settings(max_examples=100, deadline=None)
@given(single_record(ResourceType.OPAQUE))
def test_opaque_round_trip(record: Record) -> None:
    payload = encode(ContentFormat.OPAQUE, [record], registry=registry())
    assert payload == record.value
    assert decode(ContentFormat.OPAQUE, payload, base_path=record.path, registry=registry()) == [record]


@pytest.mark.parametrize("cf", MULTI_FORMATS, ids=lambda cf: cf.name)
@settings(max_examples=150, deadline=None)
@given(records=record_sets())
def test_multi_record_round_trip(cf: ContentFormat, records: list[Record]) -> None:
    reg = registry()
    payload = encode(cf, records, registry=reg)
    decoded = decode(cf, payload, base_path=common_prefix([r.path for r in records]), registry=reg)
    if cf in TREE_FORMATS:
        assert typed(decoded) == typed(sorted(records, key=lambda r: r.path))
    else:
        assert typed(decoded) == typed(records)


@pytest.mark.parametrize("cf", MULTI_FORMATS, ids=lambda cf: cf.name)
@settings(max_examples=60, deadline=None)
@given(records=record_sets(instances=1))
def test_round_trip_with_explicit_object_base(cf: ContentFormat, records: list[Record]) -> None:
    reg = registry()
    base = Path(TEST_OBJECT)
    decoded = decode(cf, encode(cf, records, base_path=base, registry=reg), base_path=base, registry=reg)
    assert typed(sorted(decoded, key=lambda r: r.path)) == typed(sorted(records, key=lambda r: r.path))


@pytest.mark.parametrize("cf", TIMED_FORMATS, ids=lambda cf: cf.name)
@settings(max_examples=150, deadline=None)
@given(records=record_sets(times=True))
def test_timed_round_trip(cf: ContentFormat, records: list[Record]) -> None:
    payload = encode(cf, records, registry=registry())
    assert typed(decode(cf, payload, registry=registry(), now=0.0)) == typed(records)


paths_any_level = st.lists(st.integers(0, 65535), min_size=1, max_size=4).map(lambda s: Path(*s))


@pytest.mark.parametrize("cf", [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR], ids=lambda cf: cf.name)
@settings(max_examples=150, deadline=None)
@given(paths=st.lists(paths_any_level, min_size=1, max_size=6))
def test_composite_request_names_round_trip(cf: ContentFormat, paths: list[Path]) -> None:
    records = [Record(p, None) for p in paths]
    assert decode(cf, encode(cf, records, base_path=ROOT), base_path=ROOT) == records
    assert decode(cf, encode(cf, records)) == records


@pytest.mark.parametrize(
    "cf", [*MULTI_FORMATS, ContentFormat.TEXT, ContentFormat.CBOR], ids=lambda cf: cf.name
)
@settings(max_examples=100, deadline=None)
@given(
    value=st.one_of(
        st.integers(-(2**63), 2**63 - 1), st.text(max_size=10), st.booleans(), st.binary(max_size=10)
    )
)
def test_round_trip_without_model_for_self_describing_formats(cf: ContentFormat, value: object) -> None:
    # No model: the Python type picks the encoding. Self-describing formats give the value back;
    # text and TLV give the raw representation (str / bytes), which is all they can know.
    path = Path(TEST_OBJECT + 1, 0, SINGLE_RID[ResourceType.INTEGER])
    record = Record(path, value)  # type: ignore[arg-type]
    decoded = decode(cf, encode(cf, [record]), base_path=path)
    if cf in (ContentFormat.TEXT, ContentFormat.TLV):
        assert len(decoded) == 1 and decoded[0].path == path
        assert isinstance(decoded[0].value, str if cf is ContentFormat.TEXT else bytes)
    elif isinstance(value, bytes) and cf is ContentFormat.LWM2M_JSON:
        assert decoded == [Record(path, decoded[0].value)]  # opaque travels as base64 text in "sv"
    else:
        assert typed(decoded) == typed([record])
