"""Circuit breaker guarding the Redis backend of the result cache.

Runs in the daemon process on its event loop, but is pure bookkeeping: no I/O, no logging, no awaiting, and an
injectable monotonic clock so tests drive it without sleeping. The Redis backend asks ``allow()`` before every
operation and reports the outcome; the transitions it returns (``OPENED``, ``RECOVERED``) are what the backend
logs, which is how an outage yields exactly one WARNING and one INFO instead of a line per request.

    CLOSED --(failures consecutive failures)--> OPEN --(reset_s elapsed)--> HALF_OPEN (one probe in flight)
    HALF_OPEN --probe succeeds--> CLOSED          HALF_OPEN --probe fails--> OPEN (timer restarts)
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

__all__ = ["BreakerState", "CircuitBreaker", "Transition"]


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Transition(str, enum.Enum):
    """What a recorded outcome changed, for the caller to log; NONE for the usual no-change case."""

    NONE = "none"
    OPENED = "opened"        # CLOSED -> OPEN: an outage starts (log once)
    REOPENED = "reopened"    # HALF_OPEN -> OPEN: the probe failed, same outage (not logged again)
    RECOVERED = "recovered"  # HALF_OPEN/OPEN -> CLOSED: the outage is over (log once)


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open probe.

    ``allow()`` returns True when an operation may go to Redis. In HALF_OPEN exactly one caller gets True (the
    probe); everyone else is bypassed until the probe reports, so a still-dead Redis costs one timeout per
    ``reset_s``, not one per concurrent request.
    """

    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1:
            raise ValueError("failures must be >= 1")
        if reset_s <= 0:
            raise ValueError("reset_s must be > 0")
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0       # when the current OPEN period started (restarted by a failed probe)
        self._outage_since = 0.0    # when the outage started (first OPEN), for the recovery message
        self._probe_in_flight = False
        self.opened_count = 0       # outages seen, for stats

    @property
    def state(self) -> BreakerState:
        # OPEN turns into HALF_OPEN lazily when read: no timer task needed on the loop.
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_s:
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
        return self._state

    @property
    def outage_s(self) -> float:
        """Seconds since the current outage started; 0 while closed."""
        return 0.0 if self._state is BreakerState.CLOSED else self._clock() - self._outage_since

    def allow(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> Transition:
        state = self.state
        self._consecutive = 0
        if state is BreakerState.HALF_OPEN:
            self._state = BreakerState.CLOSED
            self._probe_in_flight = False
            return Transition.RECOVERED
        # A success reported while OPEN comes from an operation started before the breaker opened; one lucky
        # straggler is no proof Redis is back, so only the probe may close the breaker.
        return Transition.NONE

    def record_failure(self) -> Transition:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._open()
            return Transition.REOPENED
        if state is BreakerState.OPEN:
            # Stragglers started before the breaker opened: the outage is already known, keep the timer.
            return Transition.NONE
        self._consecutive += 1
        if self._consecutive >= self.failures:
            self._outage_since = self._clock()
            self.opened_count += 1
            self._open()
            return Transition.OPENED
        return Transition.NONE

    def trip(self) -> Transition:
        """Open at once (Redis unreachable at start: no point in waiting for ``failures`` requests to fail)."""
        if self.state is not BreakerState.CLOSED:
            return Transition.NONE
        self._outage_since = self._clock()
        self.opened_count += 1
        self._open()
        return Transition.OPENED

    def release_probe(self) -> None:
        """The probe ended without an outcome (cancelled by its caller): let the next caller probe instead."""
        if self._state is BreakerState.HALF_OPEN:
            self._probe_in_flight = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._consecutive = 0
        self._probe_in_flight = False
