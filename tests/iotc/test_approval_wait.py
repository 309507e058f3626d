"""While IoT Central refuses a device (waiting for approval, or blocked: DPS 401/400209), DPS is asked again
only after long, growing, jittered waits — never the reconnect loop's short ones — and only DPS, not the hub
with a cached assignment. A hub answering "server unavailable" three times in a row sends the device to DPS,
which is how a device blocked while connected learns why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.approval_wait import ApprovalPolicy, ApprovalWait
from translator.iotc.protocol.backoff import Backoff, BackoffPolicy, RandomSource
from translator.iotc.protocol.reconnect import Ended, Ending, ReconnectPolicy


def _draws(*values: float) -> RandomSource:
    source = iter(values)
    return lambda: next(source)


def test_waits_grow_from_base_to_cap_and_are_never_shorter_than_half_the_ceiling() -> None:
    wait = ApprovalWait(ApprovalPolicy(base=60, cap=900), _draws(0.0, 0.999, 0.0, 0.5, 0.0, 0.0))
    delays = [wait.next_delay() for _ in range(6)]
    assert delays[0] == 30.0  # [30, 60)
    assert delays[1] == pytest.approx(119.94)  # [60, 120)
    assert delays[2] == 120.0  # [120, 240)
    assert delays[3] == 360.0  # [240, 480)
    assert delays[4:] == [450.0, 450.0]  # the cap: [450, 900)
    wait.reset()
    assert wait.attempt == 0


@given(st.floats(min_value=0.0, max_value=0.999999), st.integers(min_value=0, max_value=50))
def test_every_draw_lies_in_half_the_ceiling_to_the_ceiling(draw: float, attempts: int) -> None:
    wait = ApprovalWait(ApprovalPolicy(base=2, cap=10), lambda: draw)
    for _ in range(attempts):
        wait.next_delay()
    ceiling = min(10.0, 2.0 * 2**attempts)
    assert ceiling / 2 <= wait.next_delay() < ceiling


def _policy() -> ReconnectPolicy:
    backoff = Backoff(BackoffPolicy(base=1, cap=60), lambda: 0.5, lambda: 0.0)
    return ReconnectPolicy(backoff, ApprovalWait(ApprovalPolicy(base=60, cap=900), lambda: 0.0))


def test_a_refused_device_waits_long_and_asks_dps_not_the_hub() -> None:
    p = _policy()
    retries = [p.ended(Ended(Ending.NOT_APPROVED, "401/400209")) for _ in range(3)]
    assert [r.delay for r in retries] == [30.0, 60.0, 120.0]
    assert all(r.not_approved and r.reprovision and r.disconnect for r in retries)
    # Once assigned (approved), the next refusal starts from the first wait again.
    p.assigned()
    assert p.ended(Ended(Ending.NOT_APPROVED, "blocked again")).delay == 30.0
    # Other failures keep their short backoff.
    assert p.ended(Ended(Ending.LOST, "lost")).delay == 0.5


def test_three_server_unavailable_refusals_in_a_row_run_dps_again() -> None:
    p = _policy()
    refused = Ended(Ending.REFUSED, "CONNACK 3", return_code=3)
    assert [p.ended(refused).reprovision for _ in range(3)] == [False, False, True]
    p.assigned()
    # A connection in between starts the count afresh: a throttled hub now and then is no block.
    p.ended(refused)
    p.ended(refused)
    p.connected()
    assert not p.ended(refused).reprovision
