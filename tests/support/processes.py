"""Stopping the real servers tests start (HAProxy, Prometheus, ...): TERM, a bounded wait, then KILL."""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen | None, timeout_s: float = 10) -> int | None:
    """TERM ``proc`` and wait up to ``timeout_s``; KILL it if it is still there. Its exit code (None if no proc)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(10)
