"""What the supervisor needs of a worker process (a cold ``asyncio.subprocess.Process``, a forked one, or a fake
in tests) and of whatever forks workers faster than a cold spawn (``ZygoteKeeper``). Daemon process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from tts_ops.supervisor.spec import WorkerSpec


class WorkerProcess(Protocol):
    """What a handle needs of the process it supervises (``asyncio.subprocess.Process``; a fake in tests)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int | None: ...


class SpawnedProcess(WorkerProcess, Protocol):
    """A process as ``spawn`` starts it: a cold one (``asyncio.subprocess.Process``) or a forked one."""

    @property
    def stdout(self) -> asyncio.StreamReader | None: ...


class Forker(Protocol):
    """Starts workers faster than a cold spawn (``ZygoteKeeper``); None means "cold-spawn this one"."""

    async def fork(self, spec: WorkerSpec, worker_id: str, socket: Path) -> SpawnedProcess | None: ...
