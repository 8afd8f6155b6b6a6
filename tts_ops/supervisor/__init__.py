"""Supervision of inference worker processes: lifecycle, probing, restart policy, recycling (daemon process)."""

from tts_ops.supervisor.handle import WorkerHandle
from tts_ops.supervisor.pool import Supervisor
from tts_ops.supervisor.spec import PoolSettings, WorkerSpec
from tts_ops.supervisor.states import WorkerState

__all__ = ["PoolSettings", "Supervisor", "WorkerHandle", "WorkerSpec", "WorkerState"]
