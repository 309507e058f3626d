"""Unit tests of the pure cores: no sockets, no sleeps."""

from __future__ import annotations

import random

import aiocoap
import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.coap import (
    BadRequest,
    DeviceIdentity,
    Forbidden,
    RegistrationStore,
    UnknownRegistration,
    UnsupportedContentFormat,
    UnsupportedVersion,
    answer_for,
    decode_ingest,
    parse_query,
    wire,
)
from translator.coap.dedup import PENDING, DedupCache
from translator.coap.errors import BackPressure, Code, PayloadTooLarge
from translator.coap.identity import Admission, ClaimedEndpointResolver, SecurityContext
from translator.coap.negotiation import composite_formats, read_formats, write_formats
from translator.coap.observe import ObservationSequence
from translator.coap.queue import DownlinkQueue
from translator.coap.registration import parse_objects
from translator.coap.sink import NamedRecord
from translator.lwm2m import ContentFormat, ErrorKind, Lwm2mFormatError, Path, Record


def test_identity_resolution_and_admission() -> None:
    resolver = ClaimedEndpointResolver()
    assert resolver.resolve("dev1", None) == DeviceIdentity("dev1", "dev1", False)
    with pytest.raises(BadRequest):
        resolver.resolve(None, None)
    secured = resolver.resolve(None, SecurityContext("psk", "dev2"))
    assert secured.endpoint == "dev2" and secured.authenticated
    with pytest.raises(Forbidden):
        resolver.resolve("other", SecurityContext("psk", "dev2"))
    Admission(auto=True).check(DeviceIdentity.of("anyone"))
    allow = Admission(auto=False, allow=["dev1", "x--_dev"])
    allow.check(DeviceIdentity.of("dev1"))
    allow.check(DeviceIdentity.of("Dev"))
    with pytest.raises(Forbidden):
        allow.check(DeviceIdentity.of("dev3"))


# --- registration ------------------------------------------------------------------------------------


def test_parse_register_queries() -> None:
    p = parse_query(["lwm2m=1.1", "ep=wakaama-ep", "b=U", "lt=300"])
    assert (p.endpoint, p.lifetime, p.version, p.binding, p.queue_mode) == (
        "wakaama-ep",
        300,
        "1.1",
        "U",
        False,
    )
    p = parse_query(["lwm2m=1.2", "ep=anjay-ep", "lt=300", "Q"])
    assert p.queue_mode is True and p.binding == "U"
    p = parse_query(["lwm2m=1.0", "ep=e", "b=UQ"])
    assert p.queue_mode is True and p.lifetime == 86400
    assert parse_query(["lt=300"]).endpoint is None  # the identity resolver answers 4.00
    with pytest.raises(UnsupportedVersion):
        parse_query(["ep=e", "lwm2m=2.0"])
    with pytest.raises(BadRequest):
        parse_query(["ep=e", "lt=abc"])
    with pytest.raises(BadRequest):
        parse_query(["ep=e", "b=S"])
    with pytest.raises(BadRequest):
        parse_query(["ep=e", "ep=f"])
    u = parse_query(["lt=60"], update=True)
    assert (u.lifetime, u.binding, u.queue_mode, u.version) == (60, None, None, None)


def test_parse_objects() -> None:
    objs = parse_objects(40, b'</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</3/0>,</3303/0>')
    assert objs is not None and objs.content_formats == (110,) and set(objs.objects) == {1, 3, 3303}
    assert parse_objects(None, b"") is None
    with pytest.raises(BadRequest):
        parse_objects(40, b"</3/0")
    with pytest.raises(UnsupportedContentFormat):
        parse_objects(110, b"[]")


def test_store_life_cycle() -> None:
    store = RegistrationStore(grace=5.0)
    ident = DeviceIdentity.of("dev1")
    first = store.register(ident, parse_query(["ep=dev1", "lt=10"]), None, ("::1", 1000), now=0.0)
    reg = first.registration
    assert first.replaced is None and store.by_endpoint("dev1") is reg and store.by_peer(("::1", 1000)) is reg
    updated = store.update(reg.reg_id, parse_query(["lt=20"], update=True), None, ("::1", 1001), now=5.0)
    assert (
        updated.lifetime == 20
        and store.by_peer(("::1", 1001)) is updated
        and store.by_peer(("::1", 1000)) is None
    )
    assert store.expire(now=29.0) == []
    again = store.register(ident, parse_query(["ep=dev1", "lt=10", "Q"]), None, ("::1", 1002), now=6.0)
    assert again.replaced == updated and again.registration.reg_id != reg.reg_id and len(store) == 1
    with pytest.raises(UnknownRegistration):
        store.update(reg.reg_id, parse_query([], update=True), None, ("::1", 1), now=7.0)
    assert [r.endpoint for r in store.expire(now=21.0)] == ["dev1"]
    assert len(store) == 0
    with pytest.raises(UnknownRegistration):
        store.deregister(again.registration.reg_id)


def test_store_expiry_schedule_matches_a_walk_over_every_registration() -> None:
    """The expiry heap (stale entries after updates, lifetimes shortened and extended, compaction) expires
    exactly what a walk over every registration would, at the same moments."""
    rng = random.Random(7)
    store = RegistrationStore(grace=2.0)
    now = 0.0
    for step in range(4000):
        now += rng.uniform(0.0, 0.5)
        endpoint = f"dev{rng.randrange(40)}"
        current = store.by_endpoint(endpoint)
        lifetime = rng.randrange(1, 30)
        action = rng.random()
        if current is None or action < 0.2:
            query = [f"ep={endpoint}", f"lt={lifetime}"]
            store.register(DeviceIdentity.of(endpoint), parse_query(query), None, ("::1", step), now=now)
        elif action < 0.8:
            store.update(
                current.reg_id, parse_query([f"lt={lifetime}"], update=True), None, current.peer, now
            )
        elif action < 0.85:
            store.deregister(current.reg_id)
        due = sorted(r.reg_id for r in store if r.expires_at(store.grace) <= now)
        assert sorted(r.reg_id for r in store.expire(now)) == due
        assert all(r.expires_at(store.grace) > now for r in store)


# --- queue mode, observe ordering, dedup ------------------------------------------------------------


def test_downlink_queue() -> None:
    q: DownlinkQueue[str] = DownlinkQueue(window=10.0)
    q.hold("a", deadline=5.0)
    q.hold("b", deadline=50.0)
    assert q.next_ready(1.0) is None  # asleep
    assert q.expired(6.0) == ["a"]
    q.note_activity(20.0)
    assert q.is_awake(29.0) and not q.is_awake(30.0)
    assert q.next_ready(21.0) == "b"
    assert q.next_ready(21.0) is None
    q.hold("c", deadline=100.0)
    assert q.drain() == ["c"] and len(q) == 0


def test_observation_sequence() -> None:
    seq = ObservationSequence()
    assert seq.accept(5, 0.0)
    assert not seq.accept(4, 1.0)  # reordered: stale
    assert seq.accept(6, 2.0)
    assert seq.accept((1 << 24) - 1, 3.0) is False  # far behind in serial arithmetic
    assert seq.accept(2, 200.0)  # 128 s later anything is fresh
    wrap = ObservationSequence()
    assert wrap.accept((1 << 24) - 2, 0.0) and wrap.accept(1, 1.0)  # wrap-around is newer
    assert seq.dropped == 2


def test_dedup_cache_bounded() -> None:
    cache = DedupCache(per_peer=4, max_peers=2, lifetime=10.0)
    assert cache.check("p1", 1, 0.0) is None
    assert cache.check("p1", 1, 0.1) == PENDING
    cache.store("p1", 1, b"resp")
    assert cache.check("p1", 1, 0.2) == b"resp"
    for mid in range(2, 10):
        cache.check("p1", mid, 0.3)
    assert len(cache) == 4 and cache.check("p1", 1, 0.4) is None  # evicted: treated as new
    cache.check("p2", 1, 0.5)
    cache.check("p3", 1, 0.6)
    assert cache.peers == 2
    assert cache.check("p3", 1, 20.0) is None  # older than the lifetime
    assert cache.sweep(100.0) == 2


# --- wire -----------------------------------------------------------------------------------------------


def test_wire_roundtrip_against_aiocoap() -> None:
    data = wire.encode(
        wire.CON,
        Code.POST,
        0x1234,
        b"\xaa\xbb",
        [
            (wire.OPT_URI_PATH, b"dp"),
            (wire.OPT_CONTENT_FORMAT, wire.uint(112)),
            (wire.OPT_URI_QUERY, b"x" * 300),
        ],
        b"\x80",
    )
    msg = aiocoap.Message.decode(data)
    assert msg.opt.uri_path == ("dp",) and msg.opt.content_format == 112 and msg.opt.uri_query == ("x" * 300,)
    theirs = aiocoap.Message(
        code=aiocoap.POST,
        mid=0x1234,
        token=b"\xaa\xbb",
        mtype=aiocoap.CON,
        uri_path=("dp",),
        content_format=112,
        payload=b"\x80",
    )
    ours = wire.parse(theirs.encode())
    assert (
        ours is not None
        and ours.uri_path == ["dp"]
        and ours.content_format == 112
        and ours.payload == b"\x80"
    )
    assert (ours.mtype, ours.code, ours.mid, ours.token) == (wire.CON, Code.POST, 0x1234, b"\xaa\xbb")


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x01\x02\x03", b"\x4f\x01\x00\x00", b"\x40\x02\x00\x01\xff", b"\x40\x02\x00\x01\xf0"]
)
def test_wire_rejects_garbage(data: bytes) -> None:
    msg = wire.parse(data)
    assert msg is None or msg.fault == wire.FORMAT_ERROR


def test_wire_flags_blockwise() -> None:
    data = wire.encode(
        wire.CON, Code.POST, 1, b"", [(wire.OPT_URI_PATH, b"dp"), (wire.OPT_BLOCK1, b"\x0e")], b"x"
    )
    msg = wire.parse(data)
    assert msg is not None and msg.special


@given(st.binary(max_size=64))
def test_wire_parse_never_raises(data: bytes) -> None:
    wire.parse(data)


@given(st.binary(min_size=4, max_size=48).map(lambda b: bytes((0x40 | (b[0] & 0x3F),)) + b[1:]))
def test_wire_passes_on_only_what_aiocoap_can_decode(data: bytes) -> None:
    # The tap hands aiocoap every datagram without a fault: aiocoap must never raise on one (it raised
    # UnicodeDecodeError out of the socket reader for a non-UTF-8 Uri-Query), and must read it alike.
    msg = wire.parse(data)
    assert msg is not None
    if msg.fault:
        return
    theirs = aiocoap.Message.decode(data)
    assert (int(theirs.mtype), int(theirs.code), theirs.mid, theirs.token) == (
        msg.mtype,
        msg.code,
        msg.mid,
        msg.token,
    )
    assert list(theirs.opt.uri_path) == msg.uri_path and list(theirs.opt.uri_query) == msg.uri_query
    assert theirs.payload == msg.payload


# --- ingest, errors, negotiation ----------------------------------------------------------------------


def test_ingest_decoding() -> None:
    out = decode_ingest(
        60,
        cbor2.dumps({"temperature": 21.5, "/3303/0/5700": 20.0, "t": 1700000000}),
        now=0.0,
        max_payload=1000,
    )
    assert NamedRecord("temperature", 21.5, 1700000000.0) in out
    assert Record(Path(3303, 0, 5700), 20.0, 1700000000.0) in out
    rel = decode_ingest(None, cbor2.dumps([{"a": 1, "t": -30}, {"a": 2}]), now=1000.0, max_payload=1000)
    assert rel == [NamedRecord("a", 1, 970.0), NamedRecord("a", 2, None)]
    for bad in (
        b"\xff\xff",
        cbor2.dumps({"a": [1]}),
        cbor2.dumps(5),
        cbor2.dumps({}),
        cbor2.dumps({"a": 1, "t": "x"}),
    ):
        with pytest.raises(BadRequest):
            decode_ingest(60, bad, now=0.0, max_payload=1000)
    with pytest.raises(UnsupportedContentFormat):
        decode_ingest(110, b"{}", now=0.0, max_payload=1000)
    with pytest.raises(PayloadTooLarge):
        decode_ingest(60, b"\x00" * 2000, now=0.0, max_payload=1000)


def test_answer_mapping() -> None:
    assert (
        answer_for(Lwm2mFormatError("x", ErrorKind.UNSUPPORTED_CONTENT_FORMAT))[0]
        == Code.UNSUPPORTED_CONTENT_FORMAT
    )
    assert answer_for(BackPressure("full", retry_after=9)) == (Code.SERVICE_UNAVAILABLE, "full", 9)
    assert answer_for(UnsupportedVersion("v"))[0].dotted == "4.12"
    assert answer_for(RuntimeError("boom"))[0] == Code.INTERNAL_SERVER_ERROR


def test_negotiation() -> None:
    assert read_formats((1, 1), (110,), Path(3, 0))[0] == ContentFormat.SENML_JSON
    assert read_formats((1, 2), (), Path(3303, 0))[0] == ContentFormat.LWM2M_CBOR
    assert read_formats((1, 0), (), Path(3, 0, 9)) == [
        ContentFormat.TLV,
        ContentFormat.LWM2M_JSON,
        ContentFormat.TEXT,
    ]
    assert ContentFormat.TEXT in write_formats((1, 1), (), Path(3, 0, 14), True)
    assert composite_formats((1, 0), ()) == []
    assert composite_formats((1, 1), (110,))[0] == ContentFormat.SENML_JSON
