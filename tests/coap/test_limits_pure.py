"""The pure parts of the CoAP face's limits: the gate's answers, the dedup cap, the memo, the log budget."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from translator.coap import gate, wire
from translator.coap.dedup import PENDING, DedupCache
from translator.coap.errors import Code
from translator.coap.memo import BoundedMemo
from translator.coap.ratelog import LogBudget, RateLimitFilter
from translator.lwm2m import ObjectRegistry


def _mid() -> int:
    return 0x7777


def test_gate_answers() -> None:
    bad = wire.parse(wire.encode(wire.CON, Code.POST, 5, b"\x01", [(11, b"rd"), (25, b"")]))
    assert bad is not None and (bad.fault, bad.bad_option) == (wire.BAD_OPTION, 25)
    answer = wire.parse(gate.refusal(bad, _mid) or b"")
    assert answer is not None and (answer.mtype, answer.code, answer.mid, answer.token) == (
        wire.ACK,
        Code.BAD_OPTION,
        5,
        b"\x01",
    )
    bad.mtype = wire.NON
    answer = wire.parse(gate.refusal(bad, _mid) or b"")
    assert answer is not None and (answer.mtype, answer.mid) == (wire.RST, 5)
    bad.mtype = wire.ACK
    assert gate.refusal(bad, _mid) is None
    proxy = wire.parse(wire.encode(wire.NON, Code.GET, 6, b"\x02", [(wire.OPT_PROXY_URI, b"coap://x")]))
    assert proxy is not None and proxy.fault == wire.PROXY
    answer = wire.parse(gate.refusal(proxy, _mid) or b"")
    assert answer is not None and (answer.mtype, answer.code, answer.mid) == (
        wire.NON,
        Code.PROXYING_NOT_SUPPORTED,
        0x7777,
    )


def test_gate_truncated() -> None:
    request = wire.encode(wire.CON, Code.POST, 9, b"\x09", [(11, b"dp")], b"x" * 100)
    answer = wire.parse(gate.truncated(request[:60], 2048, _mid) or b"")
    assert answer is not None and (answer.code, answer.mid, answer.token) == (
        Code.REQUEST_ENTITY_TOO_LARGE,
        9,
        b"\x09",
    )
    response = wire.encode(wire.CON, Code.CONTENT, 9, b"\x09", [], b"x" * 100)
    assert gate.truncated(response[:60], 2048, _mid) is None
    assert gate.truncated(b"\x4f\x01\x00", 2048, _mid) is None


@given(st.binary(min_size=4, max_size=40))
def test_gate_never_answers_an_ack_or_rst(data: bytes) -> None:
    msg = wire.parse(data)
    if msg is not None and msg.fault and msg.mtype >= wire.ACK:
        assert gate.refusal(msg, _mid) is None


def test_dedup_total_cap_and_forget() -> None:
    cache = DedupCache(per_peer=8, max_peers=100, max_entries=10, lifetime=100.0)
    for peer in range(6):
        for mid in range(3):
            cache.check(peer, mid, float(peer))
    assert len(cache) <= 10
    assert cache.check(5, 2, 10.0) == PENDING  # the newest peer is kept
    peers = cache.peers
    for mid in range(3):
        cache.forget(5, mid)
    assert cache.peers == peers - 1
    empty = DedupCache()
    empty.check("p", 1, 0.0)
    empty.forget("p", 1)
    assert (len(empty), empty.peers) == (0, 0)  # a forgotten peer leaves nothing behind


def test_memo_cap_and_age() -> None:
    memo = BoundedMemo[str, int](max_entries=3, lifetime=10.0)
    for i in range(5):
        memo.put(f"k{i}", i, float(i))
    assert len(memo) == 3 and memo.get("k0", 5.0) is None and memo.get("k4", 5.0) == 4
    assert memo.get("k2", 12.5) is None  # too old
    assert memo.sweep(20.0) == 2 and len(memo) == 0


def test_log_budget_and_filter() -> None:
    now = [0.0]
    budget = LogBudget(10.0, clock=lambda: now[0])
    assert budget.allow("a") == 0
    assert budget.allow("a") is None and budget.allow("a") is None
    assert budget.allow("b") == 0
    now[0] = 11.0
    assert budget.allow("a") == 2
    records = [
        logging.LogRecord("x", logging.WARNING, __file__, 1, "bad datagram from %s", ("h",), None)
        for _ in range(5)
    ]
    flt = RateLimitFilter(LogBudget(10.0, clock=lambda: 0.0))
    assert [flt.filter(r) for r in records] == [True, False, False, False, False]


def test_registry_shares_lookups_per_object_list() -> None:
    registry = ObjectRegistry.builtin()
    first = registry.for_versions({3: None, 3303: "1.1"})
    assert registry.for_versions({3303: "1.1", 3: None}) is first
    assert registry.for_versions({3: None}) is not first
