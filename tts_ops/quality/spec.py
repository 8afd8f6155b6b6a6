"""How the scorer process is started and judged (daemon process, pure data); ``tts_ops.daemon.specs.scorer_spec``
builds it from the config at start (the ``quality`` section is restart-only)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from tts_ops.supervisor.policy import RestartOptions

__all__ = ["ScorerSpec"]


@dataclass(frozen=True)
class ScorerSpec:
    threads: int = 1
    nice: int = 10
    boot_timeout_s: float = 120.0
    score_timeout_s: float = 60.0
    kill_grace_s: float = 5.0
    policy: RestartOptions = field(default_factory=RestartOptions)
    env: dict[str, str] | None = None
    #: The program run with ``python -m``; tests name a stand-in that speaks the same protocol without torch.
    module: str = "inference.quality.scorer_process"

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, "--threads", str(self.threads),
                "--nice", str(self.nice), "--parent-pid", str(os.getpid())]

    def process_env(self) -> dict[str, str]:
        """The daemon's environment with the thread pools of torch's backends bounded before torch is imported
        (``torch.set_num_threads`` alone leaves OpenMP's pool at the CPU count)."""
        env = dict(self.env if self.env is not None else os.environ)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(self.threads)
        return env
