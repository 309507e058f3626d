from translator.iotc.protocol.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_paced_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == 0.01  # the fourth waits one token's worth
    assert bucket.reserve() == 0.02  # reservations queue behind each other
    clock.now = 1.0  # a second later the bucket is full again
    assert bucket.reserve() == 0.0


def test_rate_over_a_long_run() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=50, burst=1, clock=clock)
    waits = [bucket.reserve() for _ in range(101)]
    assert waits[0] == 0.0
    assert abs(waits[-1] - 2.0) < 1e-9  # 100 more tokens at 50/s: the last starts 2 s later
