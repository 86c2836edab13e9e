"""The per-client token bucket (pure, on an injected clock)."""

from __future__ import annotations

import pytest

from hub.open311.ratelimit import ClientRateLimiter, retry_after_s


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_the_rate() -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter(rate_per_s=0.5, burst=3, clock=clock)
    assert [limiter.admit("a") for _ in range(3)] == [None, None, None]
    wait = limiter.admit("a")
    assert wait == pytest.approx(2.0)
    assert limiter.admit("b") is None  # another client has its own bucket
    clock.t += 2.0
    assert limiter.admit("a") is None
    assert limiter.admit("a") is not None
    clock.t += 3600
    assert [limiter.admit("a") for _ in range(4)].count(None) == 3  # refills to burst only
    assert limiter.stats()["refused"] == 3


def test_memory_is_bounded_under_a_spray_of_clients() -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter(rate_per_s=1.0, burst=2, max_clients=100, clock=clock)
    for i in range(1000):
        limiter.admit(f"addr:{i}")
        clock.t += 0.001
    assert limiter.stats()["clients"] <= 100
    assert limiter.evicted > 0


def test_retry_after_is_whole_seconds_never_zero() -> None:
    assert retry_after_s(0.01) == 1 and retry_after_s(2.2) == 3


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        ClientRateLimiter(rate_per_s=0, burst=1)
