"""Restart policy: exponential backoff, crash-loop detection and FAILED cool-down (daemon process, pure logic).

Unlike supervisord (no backoff after ``startsecs``, FATAL forever) the first crash after a healthy period is
restarted at once (``first_restart_delay_s``, 0 by default: one crash is an incident, not a loop, and a forked
replacement is ready in a fraction of a second), then repeated crashes wait 0.5 s, 1 s, 2 s ... up to
``backoff_max_s``; the delay resets once it has stayed ready for ``backoff_reset_s``. ``boot_failure_limit``
boot failures in a row (exit code 3, or no ready answer within ``boot_timeout_s``: the caller decides) or
``crash_limit`` crashes inside ``crash_window_s`` put it in FAILED, which is retried after ``failed_cooldown_s``:
never given up for good, never a tight loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TypedDict


class RestartOptions(TypedDict, total=False):
    """The configurable knobs of a ``RestartPolicy`` (``RestartPolicy(**options)``); a missing key keeps its default."""

    first_restart_delay_s: float
    backoff_initial_s: float
    backoff_max_s: float
    backoff_reset_s: float
    crash_limit: int
    crash_window_s: float
    failed_cooldown_s: float
    boot_failure_limit: int


@dataclass(frozen=True)
class Decision:
    failed: bool
    delay_s: float
    reason: str


@dataclass
class RestartPolicy:
    first_restart_delay_s: float = 0.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_reset_s: float = 60.0
    crash_limit: int = 5
    crash_window_s: float = 60.0
    failed_cooldown_s: float = 300.0
    boot_failure_limit: int = 3
    _next_delay_s: float = field(default=0.0, init=False)
    _crashes: deque[float] = field(default_factory=deque, init=False)
    _boot_failures: int = field(default=0, init=False)

    def on_ready_for(self, seconds: float) -> bool:
        """Forget past trouble once a worker has been ready long enough; True if something was reset."""
        if seconds < self.backoff_reset_s or (not self._next_delay_s and not self._boot_failures):
            return False
        self._next_delay_s = 0.0
        self._boot_failures = 0
        return True

    def on_exit(self, now: float, *, boot_failure: bool) -> Decision:
        """What to do after an unplanned exit at monotonic time ``now``."""
        if boot_failure:
            self._boot_failures += 1
            if self._boot_failures >= self.boot_failure_limit:
                return Decision(True, self.failed_cooldown_s,
                                f"boot failed {self._boot_failures} times in a row")
        else:
            self._boot_failures = 0
            self._crashes.append(now)
            while self._crashes and now - self._crashes[0] > self.crash_window_s:
                self._crashes.popleft()
            if len(self._crashes) >= self.crash_limit:
                self._crashes.clear()
                return Decision(True, self.failed_cooldown_s,
                                f"crashed {self.crash_limit} times within {self.crash_window_s:g}s")
        if not boot_failure and not self._next_delay_s:
            # Healthy until now (a fresh history, or reset by a stable run): no backoff for this one crash.
            self._next_delay_s = self.backoff_initial_s
            return Decision(False, self.first_restart_delay_s, "crash")
        delay = self._next_delay_s or self.backoff_initial_s
        self._next_delay_s = min(delay * 2, self.backoff_max_s)
        return Decision(False, delay, "boot failure" if boot_failure else "crash")
