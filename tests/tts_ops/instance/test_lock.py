"""The runtime-directory lock: one live daemon per directory, the holder named, released on close or death."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tts_ops.errors import ConfigError
from tts_ops.instance import LOCK_NAME, RuntimeLock


def test_second_holder_is_refused_with_path_key_and_pid(tmp_path):
    first = RuntimeLock(tmp_path / "run")
    first.acquire("tts-ops-5000")
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "run" / LOCK_NAME).read_text().strip() == str(os.getpid())
    with pytest.raises(ConfigError) as info:
        RuntimeLock(tmp_path / "run").acquire("tts-ops-5000")
    message = str(info.value)
    assert str(tmp_path / "run") in message and "tts-ops-5000" in message and f"pid {os.getpid()}" in message
    # Positive control: another directory is free, and this one is once the first holder lets go.
    other = RuntimeLock(tmp_path / "other")
    other.acquire("admin-6001")
    first.release()
    again = RuntimeLock(tmp_path / "run")
    again.acquire("tts-ops-5000")
    again.release()
    other.release()


def test_lock_of_a_dead_process_is_free(tmp_path):
    # A daemon killed with -9 leaves the file but not the lock; the pid it wrote is simply overwritten.
    script = ("import sys; from pathlib import Path; from tts_ops.instance import RuntimeLock; "
              "RuntimeLock(Path(sys.argv[1])).acquire('k'); print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=f"pid {proc.pid}"):
            RuntimeLock(tmp_path).acquire("k")
    finally:
        proc.kill()
        proc.wait(10)
    lock = RuntimeLock(tmp_path)
    lock.acquire("k")
    assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    lock.release()
