"""``tts-ops serve``'s daemon: the composition root (``core``), its lifecycle states, the worker pool settings it
derives from the config and the runtime worker-count target."""

from tts_ops.daemon.core import Daemon
from tts_ops.daemon.lifecycle import DAEMON_MOVES, DaemonState
from tts_ops.daemon.scale_target import ScaleTarget
from tts_ops.daemon.specs import pool_settings, worker_spec

__all__ = ["DAEMON_MOVES", "Daemon", "DaemonState", "ScaleTarget", "pool_settings", "worker_spec"]
