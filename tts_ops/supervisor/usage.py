"""Resource readings of worker processes for the watchdog (daemon process, in a worker thread).

psutil calls block on /proc, so the supervisor runs ``UsageSampler.sample`` off the event loop. The sampler keeps a
``psutil.Process`` per pid because ``cpu_percent(None)`` measures since the previous call on the same object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import psutil

__all__ = ["Sample", "UsageSampler"]

W = TypeVar("W")


@dataclass(frozen=True, slots=True)
class Sample(Generic[W]):
    """One reading of one worker: the handle, the pid measured, its RSS in bytes and its CPU percent (None when
    the worker had no process)."""

    worker: W
    pid: int | None
    rss_bytes: int | None
    cpu_percent: float | None


class UsageSampler(Generic[W]):
    """Reads RSS and CPU of the pids it is given. One thread at a time (the watchdog awaits each round)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, snapshot: list[tuple[W, int | None]]) -> list[Sample[W]]:
        """Reads only ``snapshot`` and psutil; a process gone meanwhile is left out of the result."""
        samples: list[Sample[W]] = []
        for worker, pid in snapshot:
            if pid is None:
                samples.append(Sample(worker, pid, None, None))
                continue
            try:
                proc = self._procs.get(pid)
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                samples.append(Sample(worker, pid, proc.memory_info().rss, proc.cpu_percent(None)))
            except psutil.Error:
                self._procs.pop(pid, None)
        live = {pid for _, pid in snapshot}
        for pid in [p for p in self._procs if p not in live]:
            del self._procs[pid]
        return samples
