"""One daemon per runtime directory: the flock that a second ``tts-ops serve`` for the same instance runs into.

The runtime directory holds the worker sockets (``w1-<pid>-1.sock``...); two daemons sharing it re-bind and unlink each
other's sockets. The default directory is already per instance (``tts_ops.config.loader.instance_key``); the lock
catches the rest: one ``instance.name`` twice, or one explicit ``paths.runtime_dir`` in two configs. The lock file
is never deleted (unlinking a lock file races with the next daemon taking it); the kernel drops the lock when the
process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tts_ops.errors import ConfigError

LOCK_NAME = "daemon.lock"


class RuntimeLock:
    """An exclusive ``flock`` on ``<runtime_dir>/daemon.lock``, held until ``release()`` or process exit."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, key: str) -> None:
        """Take the lock (creating the 0700 directory) and write our pid; ConfigError naming the directory, the
        instance ``key`` and the holder's pid when another live daemon has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"paths.runtime_dir: {self.path.parent} is in use by another tts-ops daemon (pid {holder}, "
                f"instance {key}, lock {self.path}): stop it, or give this one another instance.name or "
                "paths.runtime_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
