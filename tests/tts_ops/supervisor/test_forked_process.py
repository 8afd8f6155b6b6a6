"""Adopting a worker the zygote forked (``tts_ops.supervisor.zygote``): a failed adoption closes what it opened,
and a fork that cannot be adopted is killed and reaped rather than left running unwatched."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tts_ops.supervisor.zygote import ForkedProcess, discard_fork


def gone_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_a_failed_adoption_closes_the_output_pipe():
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(OSError):
            await ForkedProcess.adopt(gone_pid(), read_end)
        with pytest.raises(OSError):
            os.fstat(read_end)  # closed by adopt
    finally:
        os.close(write_end)


def test_an_unadoptable_fork_is_killed_and_reaped():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    discard_fork(proc.pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)  # already reaped
    proc.returncode = -9  # reaped behind Popen's back: keep its destructor quiet
