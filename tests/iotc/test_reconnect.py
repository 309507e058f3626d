"""The session's reconnect policy, without a socket: every way an attempt ends, and what comes next."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.backoff import Backoff, BackoffPolicy
from translator.iotc.protocol.reconnect import REPROVISION_CODES, Ended, Ending, ReconnectPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _top() -> float:
    return 0.999999


def policy(clock: FakeClock | None = None) -> ReconnectPolicy:
    # The top draw makes each delay its ceiling: 1, 2, 4, 8, … up to 60.
    return ReconnectPolicy(Backoff(BackoffPolicy(base=1, cap=60), _top, clock or FakeClock()))


def test_a_renewal_reconnects_at_once_without_drawing_a_delay() -> None:
    p = policy()
    retry = p.ended(Ended(Ending.RENEWAL, "token renewal"))
    assert (retry.delay, retry.reprovision, retry.disconnect) == (0.0, False, False)
    # The backoff was not advanced: the next failure still starts at the first ceiling.
    assert p.ended(Ended(Ending.LOST, "lost")).delay == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("how", [Ending.LOST, Ending.CONNECTION, Ending.PROVISIONING, Ending.UNEXPECTED])
def test_transient_failures_back_off_exponentially_and_keep_the_cached_assignment(how: Ending) -> None:
    p = policy()
    retries = [p.ended(Ended(how, "boom")) for _ in range(4)]
    assert [round(r.delay) for r in retries] == [1, 2, 4, 8]
    assert all(r.disconnect and not r.reprovision for r in retries)


@pytest.mark.parametrize("code", sorted(REPROVISION_CODES))
def test_a_refusal_that_may_mean_the_device_moved_runs_dps_again(code: int) -> None:
    p = policy()
    retry = p.ended(Ended(Ending.REFUSED, "refused", return_code=code))
    assert retry.reprovision and p.reprovision
    # A provisioning failure before a new assignment keeps asking DPS; an assignment clears it.
    assert p.ended(Ended(Ending.PROVISIONING, "dps down")).reprovision
    p.assigned()
    assert not p.reprovision


@pytest.mark.parametrize("code", [1, 3])
def test_a_refusal_for_the_server_or_protocol_keeps_the_assignment(code: int) -> None:
    retry = policy().ended(Ended(Ending.REFUSED, "refused", return_code=code))
    assert not retry.reprovision


def test_a_connection_the_hub_proved_good_starts_the_backoff_afresh() -> None:
    p = policy()
    for _ in range(3):
        p.ended(Ended(Ending.CONNECTION, "down"))
    p.connected()
    p.proven()
    assert p.ended(Ended(Ending.LOST, "lost")).delay == pytest.approx(1.0, rel=1e-3)


def test_a_connection_that_stayed_up_long_enough_starts_afresh_without_a_puback() -> None:
    clock = FakeClock()
    p = policy(clock)
    for _ in range(3):
        p.ended(Ended(Ending.CONNECTION, "down"))
    p.connected()
    clock.now += 9.0  # below stable_after (10 s): the outage continues
    assert round(p.ended(Ended(Ending.LOST, "lost")).delay) == 8
    p.connected()
    clock.now += 10.0
    assert round(p.ended(Ended(Ending.LOST, "lost")).delay) == 1


def test_a_throttled_twin_request_waits_the_hubs_retry_after_else_a_draw() -> None:
    p = policy()
    assert p.retry_after_twin_throttle(7.5) == 7.5
    assert p.retry_after_twin_throttle(None) == pytest.approx(1.0, rel=1e-3)
    assert p.retry_after_twin_throttle(None) == pytest.approx(2.0, rel=1e-3)
    assert p.retry_after_twin_throttle(0.0) == pytest.approx(4.0, rel=1e-3)


@given(st.lists(st.sampled_from(list(Ending)), max_size=40), st.integers(0, 5))
def test_no_sequence_of_endings_stops_the_session_or_exceeds_the_cap(
    endings: list[Ending], code: int
) -> None:
    p = policy()
    for how in endings:
        retry = p.ended(Ended(how, how.value, return_code=code if how is Ending.REFUSED else None))
        assert 0.0 <= retry.delay <= 60.0
        assert retry.disconnect is (how is not Ending.RENEWAL)
