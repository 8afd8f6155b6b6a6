"""What the supervisor is told to run (daemon process, pure data): ``WorkerSpec``, how to start and judge one
worker process, and ``PoolSettings``, how the pool recycles and drains its workers. Both are frozen and rebuilt
from the config on every reload; ``Supervisor.apply`` takes the pair.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tts_ops.supervisor.policy import RestartOptions

__all__ = ["PoolSettings", "WorkerSpec"]


@dataclass(frozen=True)
class WorkerSpec:
    """Everything needed to start and judge a worker; rebuilt from config on reload."""

    engine: str
    runtime_dir: Path
    threads: int = 1
    store_dir: Path | None = None
    options_json: str = "{}"
    boot_timeout_s: float = 180.0
    probe_interval_s: float = 2.0
    probe_timeout_s: float = 1.0
    failure_threshold: int = 3
    kill_grace_s: float = 5.0
    policy: RestartOptions = field(default_factory=RestartOptions)
    env: dict[str, str] | None = None
    loudness_lufs: float | None = None

    def command(self, worker_id: str, socket: Path) -> list[str]:
        return [sys.executable, "-m", "inference.worker", *self.worker_args(worker_id, socket)]

    def worker_args(self, worker_id: str, socket: Path) -> list[str]:
        """The worker's arguments: on a cold worker's command line, or in a fork request to the zygote."""
        args = [*self.engine_args(), "--socket", str(socket), "--worker-id", worker_id,
                "--parent-pid", str(os.getpid())]
        return args + (["--loudness-lufs", repr(self.loudness_lufs)] if self.loudness_lufs is not None else [])

    def engine_args(self) -> list[str]:
        """The arguments that choose and configure the engine: what a zygote preloads, so a zygote serves a spec
        only if they (and ``env``) are equal to those it was started with."""
        args = ["--engine", self.engine, "--threads", str(self.threads), "--options", self.options_json]
        return args + (["--store-dir", str(self.store_dir)] if self.store_dir is not None else [])


@dataclass(frozen=True)
class PoolSettings:
    """The pool's own knobs: drain budget of a replaced worker, recycle limits (0 = off) and the watchdog pace."""

    drain_timeout_s: float = 30.0
    max_rss_mb: int = 0
    max_requests: int = 0
    max_requests_jitter: int = 0
    watchdog_interval_s: float = 5.0
