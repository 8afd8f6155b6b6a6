"""Supervision of inference worker processes: lifecycle, probing, restart policy, recycling (daemon process)."""

from tts_ops.supervisor.states import WorkerState
from tts_ops.supervisor.supervisor import Supervisor
from tts_ops.supervisor.worker import Worker

__all__ = ["Supervisor", "Worker", "WorkerState"]
