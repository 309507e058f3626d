"""Twin request matching by $rid, without a socket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.topics import TwinResponse
from translator.iotc.protocol.twin_requests import TwinRequests


def test_each_request_gets_a_fresh_rid_and_its_own_response() -> None:
    requests: TwinRequests[str] = TwinRequests()
    first, second = requests.open("get"), requests.open("patch")
    assert first != second
    assert requests.match(TwinResponse(204, second, version=3)) == "patch"
    assert requests.match(TwinResponse(200, first)) == "get"
    assert len(requests) == 0


def test_a_response_is_handed_over_once_and_unknown_rids_are_ignored() -> None:
    requests: TwinRequests[str] = TwinRequests()
    rid = requests.open("get")
    assert requests.match(TwinResponse(200, "no-such-rid")) is None
    assert requests.match(TwinResponse(200, rid)) == "get"
    assert requests.match(TwinResponse(200, rid)) is None


def test_a_closed_request_is_not_matched_and_rids_are_not_reused() -> None:
    requests: TwinRequests[str] = TwinRequests()
    rid = requests.open("timed out")
    requests.close(rid)
    requests.close(rid)
    assert requests.match(TwinResponse(200, rid)) is None
    assert requests.open("again") != rid


def test_a_lost_connection_hands_back_every_open_waiter() -> None:
    requests: TwinRequests[str] = TwinRequests()
    rids = [requests.open(name) for name in ("a", "b", "c")]
    requests.match(TwinResponse(200, rids[1]))
    assert sorted(requests.abandon_all()) == ["a", "c"]
    assert len(requests) == 0
    assert requests.match(TwinResponse(200, rids[0])) is None


@given(st.lists(st.booleans(), max_size=50))
def test_rids_stay_unique_whatever_is_answered(answers: list[bool]) -> None:
    requests: TwinRequests[int] = TwinRequests()
    seen: set[str] = set()
    for n, answer in enumerate(answers):
        rid = requests.open(n)
        assert rid not in seen
        seen.add(rid)
        if answer:
            assert requests.match(TwinResponse(200, rid)) == n
