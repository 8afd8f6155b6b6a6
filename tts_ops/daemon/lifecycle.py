"""The daemon's own lifecycle (daemon process, pure): its states and the moves allowed between them."""

from __future__ import annotations

import enum

__all__ = ["DAEMON_MOVES", "DaemonState"]


class DaemonState(enum.Enum):
    STARTING = "starting"    # binding listeners, writing the token, spawning workers
    RUNNING = "running"      # serving (READY=1 once a worker is ready)
    RELOADING = "reloading"  # SIGHUP: rolling the workers onto the new config; still serving
    DRAINING = "draining"    # stop requested: /health and /ready say 503 so load balancers move away, while
                             # requests are still served (server.drain_delay_s)
    STOPPING = "stopping"    # listener closed, new requests on open connections get 503; in-flight ones finish
    STOPPED = "stopped"      # terminal: everything closed (or the start failed)


D = DaemonState
DAEMON_MOVES: dict[DaemonState, frozenset[DaemonState]] = {
    D.STARTING: frozenset({D.RUNNING, D.DRAINING, D.STOPPED}),
    D.RUNNING: frozenset({D.RELOADING, D.DRAINING}),
    D.RELOADING: frozenset({D.RUNNING, D.DRAINING}),
    D.DRAINING: frozenset({D.STOPPING, D.STOPPED}),  # STOPPED directly: a second TERM during the delay
    D.STOPPING: frozenset({D.STOPPED}),
    D.STOPPED: frozenset(),
}
