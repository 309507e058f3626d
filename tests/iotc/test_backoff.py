from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.backoff import Backoff, BackoffPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _top() -> float:
    return 0.999999


def test_ceiling_grows_exponentially_to_the_cap() -> None:
    policy = BackoffPolicy(base=1, cap=30, multiplier=2)
    assert [policy.ceiling(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.ceiling(10_000) == 30


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    draws = iter([0.0, 0.5, 0.5, 0.25])
    backoff = Backoff(BackoffPolicy(base=2, cap=100), lambda: next(draws), FakeClock())
    assert [backoff.next_delay() for _ in range(4)] == [0.0, 2.0, 4.0, 4.0]
    assert backoff.attempt == 4


def test_retry_after_is_a_floor() -> None:
    backoff = Backoff(BackoffPolicy(base=1, cap=4), lambda: 0.1, FakeClock())
    assert backoff.next_delay(at_least=3.0) == 3.0


def test_reset_and_stable_connection_start_over() -> None:
    clock = FakeClock()
    backoff = Backoff(BackoffPolicy(base=1, cap=64, stable_after=30), _top, clock)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() < 1

    backoff.next_delay()
    backoff.connected()
    clock.now = 10  # a short-lived connection does not count as recovery
    assert backoff.next_delay() == pytest.approx(4, rel=1e-3)
    backoff.connected()
    clock.now = 50
    assert backoff.next_delay() < 1


def test_a_connection_the_hub_proved_good_starts_afresh() -> None:
    """Issue 12 §5: back-to-back faults had grown the backoff to its cap, and a session connected for 23 s
    then waited 56 s. A PUBACK proves the connection good: the next failure starts at attempt 0, however
    short the connection was."""
    clock = FakeClock()
    backoff = Backoff(BackoffPolicy(base=1, cap=64), _top, clock)
    for _ in range(7):
        backoff.next_delay()
    backoff.connected()
    clock.now = 2.0
    backoff.proven()
    assert backoff.next_delay() < 1
    assert backoff.attempt == 1
    backoff.proven()  # nothing to reset: still cheap and harmless
    assert backoff.next_delay() < 1


def test_a_quiet_connection_counts_as_good_after_ten_seconds() -> None:
    clock = FakeClock()
    backoff = Backoff(BackoffPolicy(base=1, cap=64), _top, clock)
    for _ in range(7):
        backoff.next_delay()
    backoff.connected()
    clock.now = 9.0  # shorter than stable_after: still the grown ceiling
    assert backoff.next_delay() == pytest.approx(64, rel=1e-3)
    backoff.connected()
    clock.now = 19.5
    assert backoff.next_delay() < 1


def test_bad_random_source_is_caught() -> None:
    backoff = Backoff(BackoffPolicy(), lambda: 1.0, FakeClock())
    with pytest.raises(ValueError, match="outside"):
        backoff.next_delay()


@given(seed=st.integers(), attempts=st.integers(min_value=1, max_value=200))
def test_delays_stay_within_the_cap(seed: int, attempts: int) -> None:
    policy = BackoffPolicy(base=0.5, cap=20)
    backoff = Backoff(policy, random.Random(seed).random, FakeClock())
    for n in range(attempts):
        delay = backoff.next_delay()
        assert 0 <= delay <= policy.ceiling(n) <= policy.cap


@pytest.mark.parametrize(
    "kwargs", [{"base": 0}, {"base": 2, "cap": 1}, {"multiplier": 0.5}, {"stable_after": -1}]
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"backoff|stable_after"):
        BackoffPolicy(**kwargs)
