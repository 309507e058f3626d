"""Ownership decisions without Redis: who claims, who keeps, who leaves a device alone."""

from __future__ import annotations

import pytest

from translator.cluster.ownership import Decision, HeartbeatPolicy, Owner, Trigger, Verdict, decide, fenced


@pytest.mark.parametrize(
    ("current", "trigger", "owner_alive", "expected"),
    [
        (None, Trigger.REGISTRATION, False, Decision(Verdict.CLAIM, 0)),  # nobody ever owned it
        (None, Trigger.ORPHANED, False, Decision(Verdict.CLAIM, 0)),
        (
            Owner("a", 4),
            Trigger.REGISTRATION,
            True,
            Decision(Verdict.KEEP, 4),
        ),  # an Update: no claim, no bump
        (Owner("a", 4), Trigger.ORPHANED, False, Decision(Verdict.KEEP, 4)),
        (Owner("b", 4), Trigger.REGISTRATION, True, Decision(Verdict.CLAIM, 4)),  # its packets come here now
        (Owner("b", 4), Trigger.ORPHANED, True, Decision(Verdict.LEAVE, 4)),  # b lives: b keeps it
        (Owner("b", 4), Trigger.ORPHANED, False, Decision(Verdict.CLAIM, 4)),  # b is gone: take it over
    ],
)
def test_decide(current: Owner | None, trigger: Trigger, owner_alive: bool, expected: Decision) -> None:
    assert decide("a", current, trigger, owner_alive=owner_alive) == expected


def test_fence_holds_only_for_the_claimed_node_and_epoch() -> None:
    assert fenced(Owner("a", 3), Owner("a", 3))
    assert not fenced(Owner("a", 3), Owner("b", 4))  # lost it
    assert not fenced(Owner("a", 3), Owner("a", 5))  # lost and won again since: an older claim acts not
    assert not fenced(None, Owner("a", 3))
    assert not fenced(Owner("a", 3), None)


def test_heartbeat_policy() -> None:
    policy = HeartbeatPolicy(ttl=0.9, beats_per_ttl=3)
    assert policy.interval == pytest.approx(0.3)
    assert policy.ttl_ms == 900
    with pytest.raises(ValueError, match="heartbeat"):
        HeartbeatPolicy(ttl=1.0, beats_per_ttl=1)
