"""Log file handlers with lossless in-process rotation (daemon process).

``ReopenableFileHandler`` writes one record per ``os.write`` to ``<dir>/<name>.log`` opened O_APPEND, and can
``rotate()`` (rename to ``<name>.log.<YYYYmmdd-HHMMSS>[-N]`` and start a fresh file) or ``reopen()`` (after an
external logrotate moved the file) at any moment. Both take the handler lock that ``Handler.handle`` holds
around ``emit``; emitters are the event loop thread and the worker-output pump tasks (also other threads,
e.g. ``asyncio.to_thread`` jobs), so no record can be written half to the old file and half to the new one,
and none is lost: a record is either in the renamed file or in the new one.

Why not ``logging.handlers.TimedRotatingFileHandler`` / ``RotatingFileHandler``:
- they rotate only inside ``emit``, so a quiet log is never rotated at midnight, and the rotation time
  depends on traffic; our schedule is the maintenance scheduler's cron (00:00 / :00) and must be ours;
- we need a forced rotate from the scheduler and a SIGUSR1 ``reopen()`` for an external logrotate;
- their naming, gzip (``rotator``/``namer`` hooks run the compression *inside* emit, under the lock, on the
  event loop thread), ``backupCount`` pruning (by name pattern, races with compression) and empty-file
  rotation don't match what we want: dated names with a collision counter, gzip off the hot path, keep-N
  newest, skip empty files, never copy-truncate.

The compression and pruning helpers at the bottom run in the manager's background thread, never under a
handler lock. Failures (unwritable directory, disk full) are reported once on stderr and never raised into
the code that logs: the daemon keeps serving, and the lines of that log are dropped until it recovers.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

STAMP_FORMAT = "%Y%m%d-%H%M%S"
RETRY_OPEN_S = 30.0  # how often a handler whose file could not be opened tries again, on emit


def report(message: str) -> None:
    """Tell the operator about a logging failure, straight to stderr: logging it could recurse into the
    failing handler. Never raises (stderr may be closed)."""
    try:
        stream = sys.stderr
        if stream is not None:
            stream.write(f"tts-ops logging: {message}\n")
            stream.flush()
    except Exception:
        pass


@dataclass(frozen=True)
class Rotated:
    """One rotation: the file the log was renamed to and its size."""

    path: Path
    bytes: int


class ReopenableFileHandler(logging.Handler):
    """Appends formatted records (one line each, UTF-8) to ``path``; ``rotate()``/``reopen()`` are lossless."""

    def __init__(self, path: Path, level: int = logging.NOTSET, *, file_mode: int = 0o640,
                 quiet_open_failure: bool = False) -> None:
        super().__init__(level)
        self.path = Path(path)
        self.file_mode = file_mode  # 0640: the logs may hold client addresses and (opt-in) texts
        self.bytes_written = 0
        self.dropped = 0
        self._fd: int | None = None
        self._closed = False  # after close(): lines are dropped, the file is never opened again (no leaked fd)
        self._failing = False  # a failure was reported; stay quiet until a write succeeds again
        self._last_open_attempt = 0.0
        if quiet_open_failure:  # the manager already told the operator the whole directory is unusable
            self._failing = True
        self.acquire()
        try:
            self._open_locked()
        finally:
            self.release()

    # -- writing ---------------------------------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        # Called by Handler.handle with self.lock held.
        try:
            data = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
        except Exception:
            self.handleError(record)  # a formatting bug: stdlib prints it and carries on
            return
        self._write_locked(data)

    def write_line(self, line: str) -> None:
        """Append one already formatted line (no newline), as ``emit`` would the same line formatted from a record:
        for callers that build the line themselves (``tts_ops.logs.direct``). Same lock, same single write."""
        data = (line + "\n").encode("utf-8", "backslashreplace")
        self.acquire()
        try:
            self._write_locked(data)
        finally:
            self.release()

    def _write_locked(self, data: bytes) -> None:
        if self._closed:
            self.dropped += 1
            return
        if self._fd is None:
            now = time.monotonic()
            if now - self._last_open_attempt < RETRY_OPEN_S or not self._open_locked():
                self.dropped += 1
                return
        written = 0
        try:
            # Unbuffered: each record reaches the kernel in one write (more than line buffering gives), so
            # `tail -f` sees whole lines, nothing sits in a user-space buffer at rename time, and a failed
            # write cannot leave a half-written buffer to be flushed later into the next file.
            fd = self._open_fd()
            written = os.write(fd, data)
            while written < len(data):  # a short write (rare: a signal, a full disk): write the rest
                written += os.write(fd, memoryview(data)[written:])
        except OSError as exc:
            if 0 < written < len(data):
                self._end_fragment(fd)
            self.dropped += 1
            self._fail(f"cannot write {self.path}: {exc}; its lines are dropped until writing works again")
            return
        self.bytes_written += len(data)
        if self._failing:
            self._failing = False
            report(f"writing {self.path} works again ({self.dropped} lines dropped so far)")

    @staticmethod
    def _end_fragment(fd: int) -> None:
        """Best effort: a newline after a line cut short by a failed write, so the next line starts a line of its
        own instead of being glued to the fragment (which log shippers would then misparse as well)."""
        try:
            os.write(fd, b"\n")
        except OSError:
            pass  # the disk is still full: the fragment stays, and the failure was reported

    def flush(self) -> None:
        pass  # nothing is buffered in user space

    # -- rotation --------------------------------------------------------------------------------------------

    def rotate(self, now: datetime | None = None) -> Rotated | None:
        """Rename the current file to a dated name and start a new one; None when nothing was rotated
        (empty file, file unavailable). The caller compresses and prunes the returned file afterwards."""
        self.acquire()  # the lock emit runs under: no record is written while the file changes
        try:
            if self._fd is None and not self._open_locked():
                return None
            try:
                ours = os.fstat(self._open_fd())
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            except OSError as exc:
                self._fail(f"cannot rotate {self.path}: {exc}")
                return None
            if current is None or (current.st_dev, current.st_ino) != (ours.st_dev, ours.st_ino):
                # Someone else moved our file (external logrotate without SIGUSR1): follow the path.
                self._reopen_locked()
                return None
            if ours.st_size == 0:
                return None  # notifempty: an empty rotated file is noise
            target = rotated_name(self.path, now or datetime.now())
            try:
                os.rename(self.path, target)
            except OSError as exc:
                self._fail(f"cannot rotate {self.path} to {target.name}: {exc}; still writing to it")
                return None
            self._reopen_locked()  # our fd still points at the renamed file until here
            return Rotated(target, ours.st_size)
        finally:
            self.release()

    def reopen(self) -> bool:
        """Close and reopen ``path`` (SIGUSR1 after an external logrotate renamed it); True when open."""
        self.acquire()
        try:
            return self._reopen_locked()
        finally:
            self.release()

    def size(self) -> int:
        """Bytes in the current file (0 when it is not open)."""
        self.acquire()
        try:
            return os.fstat(self._fd).st_size if self._fd is not None else 0
        except OSError:
            return 0
        finally:
            self.release()

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        self.acquire()
        try:
            self._closed = True
            self._close_locked()
        finally:
            self.release()
        super().close()

    # -- internals (lock held) -------------------------------------------------------------------------------

    def _open_fd(self) -> int:
        """The file's descriptor, once ``_open_locked`` has succeeded."""
        assert self._fd is not None, f"{self.path} is not open"
        return self._fd

    def _open_locked(self) -> bool:
        if self._closed:  # a rotation or SIGUSR1 racing close(): never open a file nobody will close
            return False
        self._last_open_attempt = time.monotonic()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self.file_mode)
        except OSError as exc:
            self._fd = None
            self._fail(f"cannot open {self.path}: {exc}; its lines are dropped "
                       f"(retried every {RETRY_OPEN_S:g}s, on rotation and on SIGUSR1)")
            return False
        return True

    def _close_locked(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    def _reopen_locked(self) -> bool:
        self._close_locked()
        return self._open_locked()

    def _fail(self, message: str) -> None:
        if not self._failing:  # once per failure episode, not once per line
            self._failing = True
            report(message)


class StderrHandler(logging.StreamHandler):
    """StreamHandler on whatever ``sys.stderr`` is at emit time (unless given a stream), like
    ``logging.lastResort``: survives stderr being replaced (test capture, daemon re-exec)."""

    def __init__(self, stream: TextIO | None = None, level: int = logging.NOTSET) -> None:
        logging.Handler.__init__(self, level)
        self._fixed = stream

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        self._fixed = value


# -- rotated files: naming, compression, pruning (background thread) ---------------------------------------------

def _rotated_pattern(log: Path) -> re.Pattern[str]:
    return re.compile(re.escape(log.name) + r"\.(\d{8}-\d{6})(?:-(\d+))?(\.gz)?$")


def rotated_name(log: Path, now: datetime) -> Path:
    """``<name>.log.<stamp>``, or ``-N`` with N above any counter already used for that stamp (several
    rotations in one second). Above, not the first free one: pruning frees the oldest names, and reusing
    one would make the newest file sort as the oldest (and be pruned next)."""
    stamp = now.strftime(STAMP_FORMAT)
    pattern = re.compile(re.escape(f"{log.name}.{stamp}") + r"(?:-(\d+))?(?:\.gz)?(?:\.tmp)?$")
    try:
        names = os.listdir(log.parent)
    except OSError:
        names = []
    used = [int(m[1] or 0) for m in map(pattern.match, names) if m]
    name = f"{log.name}.{stamp}" if not used else f"{log.name}.{stamp}-{max(used) + 1}"
    return log.parent / name


def rotated_files(log: Path) -> list[tuple[datetime, int, Path]]:
    """Rotated files of ``log`` (plain or .gz), oldest first, as (rotation time, counter, path)."""
    pattern = _rotated_pattern(log)
    found = []
    try:
        names = os.listdir(log.parent)
    except OSError:
        return []
    for name in names:
        m = pattern.match(name)
        if m:
            found.append((datetime.strptime(m[1], STAMP_FORMAT), int(m[2] or 0), log.parent / name))
    # Ordered by the name's stamp and counter, not mtime: the .gz mtime is the compression time.
    return sorted(found, key=lambda t: (t[0], t[1], t[2].name))


def compress(path: Path) -> Path | None:
    """gzip ``path`` to ``path.gz`` (via a .tmp + rename, so a crash never leaves a truncated .gz with the
    final name) and remove the plain file. None when ``path`` is gone (already pruned)."""
    tmp = path.with_name(path.name + ".gz.tmp")
    target = path.with_name(path.name + ".gz")
    try:
        with open(path, "rb") as src:
            # Created 0600 then given the source's mode: never briefly more readable than the log was.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as raw, gzip.GzipFile(path.name, "wb", 6, raw) as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            os.chmod(tmp, os.fstat(src.fileno()).st_mode & 0o777)
        os.replace(tmp, target)
    except FileNotFoundError:
        _unlink(tmp)
        return None
    except OSError as exc:
        _unlink(tmp)
        report(f"cannot compress {path}: {exc}; left uncompressed")
        return path
    _unlink(path)
    return target


def prune(log: Path, keep: int, max_age_days: float | None = None,
          now: datetime | None = None) -> list[tuple[Path, int]]:
    """Delete rotated files of ``log`` beyond the ``keep`` newest, and those older than ``max_age_days``.
    Returns ``(path, size)`` of each file removed, so the caller can account for the space freed."""
    files = rotated_files(log)
    doomed = files[:-keep] if keep > 0 else files
    if max_age_days is not None:
        cutoff = (now or datetime.now()) - timedelta(days=max_age_days)
        doomed += [f for f in files[len(doomed):] if f[0] < cutoff]
    removed = []
    for _, _, path in doomed:
        try:
            size = os.lstat(path).st_size
        except OSError:
            continue  # already gone (a concurrent cleanup won)
        if _unlink(path):
            removed.append((path, size))
    return removed


def recover(log: Path, compress_files: bool) -> None:
    """Startup clean-up after a crash: drop half-written .gz.tmp files, compress rotated files left plain."""
    try:
        names = os.listdir(log.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(log.name + ".") and name.endswith(".gz.tmp"):
            _unlink(log.parent / name)
    if compress_files:
        for _, _, path in rotated_files(log):
            if not path.name.endswith(".gz"):
                compress(path)


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        report(f"cannot remove {path}: {exc}")
        return False
