"""Shared by the supervisor tests: a short runtime directory for worker sockets, supervisors stopped at teardown,
and ``until`` (poll a condition with a deadline instead of sleeping)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tts_ops.supervisor import Supervisor, WorkerHandle


@pytest.fixture
def runtime_dir():
    # Unix socket paths are limited to 108 bytes: keep it short, under /tmp.
    path = Path(tempfile.mkdtemp(prefix="ttssup-", dir="/tmp")) / "run"
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture
async def supervisors():
    """Append every Supervisor a test starts; each is stopped (then killed, whatever happened) at teardown."""
    started: list[Supervisor] = []
    yield started
    for sup in started:
        try:
            await asyncio.wait_for(sup.stop(drain_timeout_s=0), 20)
        finally:
            sup.kill_all()


def pid_of(worker: WorkerHandle) -> int:
    """The pid of the worker's running process; the test fails if it has none."""
    assert worker.pid is not None, f"{worker.tag} has no running process"
    return worker.pid


async def until(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
