"""Lifecycle of the scorer process and the moves allowed between them (daemon process, pure logic); the same
shape as the workers' ``tts_ops.supervisor.states``, without what only a pool of synthesis workers needs
(draining, retiring in a slot).

STARTING: process spawned, model loading; no sample is sent to it.
READY:    it said ready (its first line); samples are scored one at a time.
STOPPING: the daemon stops it (stdin closed, TERM after the grace, then KILL).
EXITED:   the process is gone; the restart policy decides what comes next.
BACKOFF:  waiting before a restart after a crash.
FAILED:   it cannot boot (torch or the weights missing: its reason says which) or crashes in a loop; retried only
          after a cool-down, while the service keeps serving without scores.
STOPPED:  the daemon is stopping; terminal.
"""

from __future__ import annotations

import enum

from tts_ops.supervisor.states import IllegalTransition


class ScorerState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    EXITED = "exited"
    BACKOFF = "backoff"
    FAILED = "failed"
    STOPPED = "stopped"


S = ScorerState
ALLOWED: dict[ScorerState, frozenset[ScorerState]] = {
    S.STARTING: frozenset({S.READY, S.STOPPING, S.EXITED}),
    S.READY: frozenset({S.STOPPING, S.EXITED}),
    S.STOPPING: frozenset({S.EXITED}),
    S.EXITED: frozenset({S.BACKOFF, S.FAILED, S.STOPPED}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED}),
    S.FAILED: frozenset({S.STARTING, S.STOPPED}),
    S.STOPPED: frozenset(),
}


def check_transition(current: ScorerState, new: ScorerState) -> None:
    if new not in ALLOWED[current]:
        raise IllegalTransition(f"scorer cannot go from {current.value} to {new.value}")
