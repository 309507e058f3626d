"""The relay's pure decisions: which datagrams a node forwards, the hysteresis that keeps a device whose
packets alternate between two nodes from flapping, the stream entries, and what a node remembers."""

from __future__ import annotations

import pytest

from translator.cluster.relay_policy import (
    AddressBook,
    Direction,
    Foreign,
    Inbound,
    Relayed,
    RelayPolicy,
    Route,
    Routes,
    classify,
    decode_entry,
    encode_entry,
    peer_of,
    peer_text,
    route_inbound,
    seen_ttl,
)

PEER = ("::ffff:127.0.0.1", 40001, 0, 0)
POST, CONTENT, EMPTY = 2, 69, 0


def test_datagrams_are_classified_by_code_and_first_segment() -> None:
    assert classify(POST, "rd") is Inbound.REGISTRATION
    assert classify(POST, "dp") is Inbound.SEND
    assert classify(POST, "ingest") is Inbound.OTHER
    assert classify(CONTENT, None) is Inbound.RESPONSE  # a notification, an answer to a downlink
    assert classify(EMPTY, None) is Inbound.RESPONSE  # an empty ACK or RST


@pytest.mark.parametrize("foreign", [None, True, False])
def test_a_register_or_update_is_always_handled_where_it_lands(foreign: bool | None) -> None:
    """The only messages that claim the device: never forwarded, whatever the node believes of the address."""
    for known in (True, False):
        assert route_inbound(Inbound.REGISTRATION, known_here=known, foreign=foreign) is Route.LOCAL
        assert route_inbound(Inbound.OTHER, known_here=known, foreign=foreign) is Route.LOCAL


@pytest.mark.parametrize("kind", [Inbound.SEND, Inbound.RESPONSE])
def test_a_send_or_notification_from_a_device_owned_elsewhere_is_relayed_never_claimed(kind: Inbound) -> None:
    assert route_inbound(kind, known_here=False, foreign=True) is Route.RELAY
    assert route_inbound(kind, known_here=False, foreign=None) is Route.LOOKUP  # asked once, then known
    assert route_inbound(kind, known_here=False, foreign=False) is Route.LOCAL  # nobody else's: 4.04 here
    assert route_inbound(kind, known_here=True, foreign=True) is Route.LOCAL  # registered here: ours


def test_packets_alternating_between_two_nodes_never_move_the_device() -> None:
    """Hysteresis by message kind: a device registered at A whose Sends and notifications land on A and B
    in turn is relayed by B each time; no decision on either node is a claim (only REGISTRATION is), so
    its hub session stays on A."""
    decisions = []
    for at_b in [False, True] * 50:
        for kind in (Inbound.SEND, Inbound.RESPONSE):
            decisions.append(route_inbound(kind, known_here=not at_b, foreign=True if at_b else None))
    assert set(decisions) == {Route.LOCAL, Route.RELAY}
    assert decisions.count(Route.RELAY) == 100


def test_entries_round_trip_and_foreign_ones_are_skipped() -> None:
    entry = Relayed(Direction.TO_OWNER, "node-b", PEER, b"\x40\x02\x12\x34")
    assert decode_entry(encode_entry(entry)) == entry
    assert peer_of(peer_text(PEER)) == PEER
    assert decode_entry({b"k": b"?", b"n": b"x", b"p": b"[1,2]", b"d": b""}) is None
    assert decode_entry({b"k": b"i"}) is None
    with pytest.raises(ValueError, match="not an address"):
        peer_of("[1]")


def test_the_address_book_forgets_owners_after_their_lifetime_and_unknowns_sooner() -> None:
    now = [0.0]
    policy = RelayPolicy(memo_lifetime=30.0, unknown_lifetime=2.0, memo_entries=2)
    book = AddressBook(policy, lambda: now[0])
    book.put(PEER, Foreign("dev-1", "node-a"))
    other = ("::ffff:127.0.0.1", 40002, 0, 0)
    book.put(other, Foreign(None, None))
    now[0] = 5.0
    assert book.get(PEER) == Foreign("dev-1", "node-a")
    assert book.get(other) is None  # an address nobody owned may have registered elsewhere since
    now[0] = 31.0
    assert book.get(PEER) is None
    for port in range(3):  # bounded: the oldest written goes first
        book.put(("h", port), Foreign("d", "n"))
    assert len(book) == 2 and book.get(("h", 0)) is None
    book.forget(("h", 1))
    assert book.get(("h", 1)) is None


def test_routes_last_until_the_device_is_heard_directly() -> None:
    routes = Routes()
    assert routes.via(PEER) is None
    routes.learned(PEER, "node-b")
    assert routes.via(PEER) == "node-b"
    routes.learned(PEER, "node-c")  # its datagrams now come through another node
    assert routes.via(PEER) == "node-c"
    routes.heard_directly(PEER)
    assert routes.via(PEER) is None and len(routes) == 0


def test_policy_bounds() -> None:
    policy = RelayPolicy(reconnect_min=0.05, reconnect_max=2.0)
    assert [policy.reconnect_delay(n) for n in (1, 2, 3)] == [0.05, 0.1, 0.2]
    assert policy.reconnect_delay(100) == 2.0
    assert policy.block_ms == 500
    with pytest.raises(ValueError):
        RelayPolicy(block=0)
    with pytest.raises(ValueError):
        RelayPolicy(reconnect_min=3.0, reconnect_max=2.0)
    assert seen_ttl(0) == 86_400 and seen_ttl(60) == 3600 and seen_ttl(86_400) == 172_800


def test_the_owners_routes_are_bounded_and_evict_the_least_recently_relayed() -> None:
    routes = Routes(limit=3)
    for n in range(3):
        routes.learned(("a", n), "B")
    routes.learned(("a", 0), "C")  # relayed again: now the most recent
    routes.learned(("a", 3), "B")  # one over the bound: ("a", 1), the least recently relayed, goes
    assert len(routes) == 3
    assert routes.via(("a", 1)) is None
    assert routes.via(("a", 0)) == "C" and routes.via(("a", 2)) == "B" and routes.via(("a", 3)) == "B"
    routes.heard_directly(("a", 0))
    assert routes.via(("a", 0)) is None and len(routes) == 2
    with pytest.raises(ValueError):
        Routes(limit=0)
