"""Worker lifecycle states and the moves allowed between them (daemon process, pure logic).

STARTING: process spawned, model loading; never routed to.
READY:    /health said ready; routed to.
DRAINING: no new requests; finishing the one in flight (recycle, rolling restart, scale-down, shutdown).
STOPPING: TERM sent (KILL after the grace period).
EXITED:   the process is gone; the restart policy decides what comes next.
BACKOFF:  waiting before a restart after a crash.
FAILED:   boot failures or too many crashes; retried only after a cool-down.
RETIRED:  removed on purpose (replaced, scaled down, daemon stopping); terminal.
"""

from __future__ import annotations

import enum


class WorkerState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPING = "stopping"
    EXITED = "exited"
    BACKOFF = "backoff"
    FAILED = "failed"
    RETIRED = "retired"


S = WorkerState
ALLOWED: dict[WorkerState, frozenset[WorkerState]] = {
    S.STARTING: frozenset({S.READY, S.STOPPING, S.EXITED}),
    S.READY: frozenset({S.DRAINING, S.STOPPING, S.EXITED}),
    S.DRAINING: frozenset({S.STOPPING, S.EXITED}),
    S.STOPPING: frozenset({S.EXITED}),
    S.EXITED: frozenset({S.BACKOFF, S.FAILED, S.RETIRED}),
    S.BACKOFF: frozenset({S.STARTING, S.RETIRED}),
    S.FAILED: frozenset({S.STARTING, S.RETIRED}),
    S.RETIRED: frozenset(),
}
# States in which a process exists and must be stopped on shutdown.
LIVE = frozenset({S.STARTING, S.READY, S.DRAINING, S.STOPPING})


class IllegalTransition(RuntimeError):
    """A lifecycle move that the state machine forbids: a supervisor bug, never an operator error."""


def check_transition(current: WorkerState, new: WorkerState) -> None:
    if new not in ALLOWED[current]:
        raise IllegalTransition(f"worker cannot go from {current.value} to {new.value}")
