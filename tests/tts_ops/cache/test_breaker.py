"""Circuit breaker state machine, driven by a fake clock."""

from __future__ import annotations

import pytest

from tts_ops.cache.breaker import BreakerState, CircuitBreaker, Transition


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_opens_after_consecutive_failures(clock):
    b = CircuitBreaker(3, 5.0, clock)
    assert b.record_failure() is Transition.NONE
    assert b.record_failure() is Transition.NONE
    assert b.state is BreakerState.CLOSED and b.allow()
    assert b.record_failure() is Transition.OPENED
    assert b.state is BreakerState.OPEN and not b.allow()
    assert b.opened_count == 1


def test_success_resets_the_count(clock):
    b = CircuitBreaker(2, 5.0, clock)
    b.record_failure()
    b.record_success()
    assert b.record_failure() is Transition.NONE
    assert b.state is BreakerState.CLOSED


def test_half_open_single_probe_then_recovery(clock):
    b = CircuitBreaker(1, 5.0, clock)
    assert b.record_failure() is Transition.OPENED
    clock.now += 4.9
    assert not b.allow()
    clock.now += 0.2
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()            # the probe
    assert not b.allow()        # everyone else waits for its verdict
    assert b.outage_s == pytest.approx(5.1)
    assert b.record_success() is Transition.RECOVERED
    assert b.state is BreakerState.CLOSED and b.allow() and b.outage_s == 0


def test_failed_probe_reopens_with_fresh_timer(clock):
    b = CircuitBreaker(2, 5.0, clock)
    b.record_failure()
    b.record_failure()
    clock.now += 5
    assert b.allow()
    assert b.record_failure() is Transition.REOPENED
    assert b.state is BreakerState.OPEN
    clock.now += 4
    assert not b.allow()
    clock.now += 1
    assert b.allow()
    assert b.opened_count == 1   # still the same outage


def test_stragglers_while_open_change_nothing(clock):
    b = CircuitBreaker(1, 5.0, clock)
    b.record_failure()
    clock.now += 3
    assert b.record_failure() is Transition.NONE      # timer not extended
    assert b.record_success() is Transition.NONE      # one late success does not close it
    clock.now += 2
    assert b.state is BreakerState.HALF_OPEN


def test_released_probe_lets_another_caller_probe(clock):
    b = CircuitBreaker(1, 1.0, clock)
    b.record_failure()
    clock.now += 1
    assert b.allow() and not b.allow()
    b.release_probe()
    assert b.allow()


def test_trip(clock):
    b = CircuitBreaker(3, 1.0, clock)
    assert b.trip() is Transition.OPENED
    assert b.trip() is Transition.NONE
    assert b.state is BreakerState.OPEN


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match=r"^failures must be >= 1$"):
        CircuitBreaker(0, 1.0)
    with pytest.raises(ValueError, match=r"^reset_s must be > 0$"):
        CircuitBreaker(1, 0)
