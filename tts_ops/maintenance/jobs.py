"""Blocking filesystem work of the maintenance jobs (daemon process, worker threads via ``asyncio.to_thread``;
never called on the event loop). Scheduling, state and logging policy live in ``tts_ops.maintenance.scheduler``.

Safety model - these functions delete files, so they only ever touch:
  * direct children of a directory opened once as a descriptor: every stat/unlink is relative to that fd
    (``dir_fd=``), so renaming or swapping the directory mid-scan cannot redirect a deletion elsewhere;
  * names matching the owner's pattern (``output_store.NAME_RE``/``TMP_RE``, ``ROTATED_LOG_RE``);
  * regular files per ``lstat`` (``follow_symlinks=False``): symlinks, and therefore their targets, are never
    touched, and directories (symlinked or not) are never entered;
  * paths whose real path is still directly inside the directory's real path (redundant with the above by
    construction; kept as a last check in case a future caller passes something unexpected).
``unlink`` itself never follows a symlink in the last component, which closes the stat-then-unlink window.

Several instances may share one ``output.dir`` (see ``tts_ops.storage.output_store``) and run these jobs at the same
time. A file another instance deleted between our listing and our stat/unlink is simply gone: not an error, not
counted, not logged (ENOENT, or ESTALE from an NFS client whose handle outlived the file). The disk guard re-reads
the free space while it deletes, so N instances freeing the same shortfall do not delete N times what was needed.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts_ops.storage.output_store import NAME_RE, TMP_RE

DAY_S = 86400.0
# "<name>.log.<suffix>": events.log.1, access.log.2026-11-23.gz. No leading dot, no separators.
ROTATED_LOG_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\.log\.[A-Za-z0-9_.-]+")
DiskUsage = Callable[[str], Any]  # shutil.disk_usage or a test stand-in: anything with .free
# "Deleted by someone else" (another instance, a concurrent run): ESTALE is NFS's way to say it.
GONE_ERRNOS = frozenset({errno.ENOENT, errno.ESTALE})
# Deletions between two re-reads of the free space by the disk guard: one statvfs per 16 unlinks.
RECHECK_EVERY = 16


def _gone(exc: OSError) -> bool:
    return exc.errno in GONE_ERRNOS


@dataclass(frozen=True)
class Candidate:
    name: str
    size: int
    mtime: float


@dataclass
class Tally:
    """What one job run deleted; ``errors`` keeps the first few messages for the job's result and log line."""

    deleted: dict[str, int] = field(default_factory=dict)
    bytes_freed: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    ignored: int = 0

    def add(self, kind: str, size: int) -> None:
        self.deleted[kind] = self.deleted.get(kind, 0) + 1
        self.bytes_freed += size

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < 5:
            self.errors.append(message)

    def merge(self, other: Tally) -> None:
        for kind, count in other.deleted.items():
            self.deleted[kind] = self.deleted.get(kind, 0) + count
        self.bytes_freed += other.bytes_freed
        self.error_count += other.error_count
        self.errors = (self.errors + other.errors)[:5]
        self.ignored += other.ignored


class OwnedDir:
    """A directory opened once; all operations go through its descriptor. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.real = os.path.realpath(self.path)
        self.fd: int | None = None

    def __enter__(self) -> OwnedDir:
        try:
            # The configured directory itself may be a symlink (an operator's choice); its children may not.
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            self.fd = None  # nothing saved/rotated yet: nothing to do
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def files(self, pattern: re.Pattern[str]) -> list[Candidate]:
        """Regular files directly inside whose whole name matches ``pattern``."""
        if self.fd is None:
            return []
        found = []
        with os.scandir(self.fd) as entries:
            for entry in entries:
                if not pattern.fullmatch(entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    if _gone(exc):
                        continue
                    raise
                if stat.S_ISREG(st.st_mode):
                    found.append(Candidate(entry.name, st.st_size, st.st_mtime))
        return found

    def candidate(self, name: str) -> Candidate | None:
        if self.fd is None or "/" in name or name in (".", ".."):
            return None
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError as exc:
            if _gone(exc):
                return None
            raise
        return Candidate(name, st.st_size, st.st_mtime) if stat.S_ISREG(st.st_mode) else None

    def remove(self, cand: Candidate) -> int | None:
        """Unlink ``cand`` if it is still a regular file directly inside; its size, or None if left alone."""
        current = self.candidate(cand.name)
        if current is None:
            return None
        if os.path.dirname(os.path.realpath(os.path.join(self.real, cand.name))) != self.real:
            return None
        try:
            os.unlink(cand.name, dir_fd=self.fd)
        except OSError as exc:
            if _gone(exc):  # a concurrent run (run_now vs schedule, guard vs cleanup, another instance) won
                return None
            raise
        return current.size


def _remove(owned: OwnedDir, cand: Candidate, kind: str, tally: Tally) -> int:
    """Delete one candidate and count it; the bytes freed. A failure is tallied, never raised (the job carries
    on)."""
    try:
        size = owned.remove(cand)
    except OSError as exc:
        tally.error(f"{kind} {cand.name}: {exc.strerror or exc}")
        return 0
    if size is None:
        return 0
    tally.add(kind, size)
    return size


def _delete_expired(owned: OwnedDir, cands: Iterable[Candidate], cutoff: float, kind: str, tally: Tally) -> None:
    for cand in cands:
        if cand.mtime < cutoff:
            _remove(owned, cand, kind, tally)


def cleanup(*, output_dir: Path, output_max_age_s: float, tmp_max_age_s: float,
            log_dir: Path | None, rotated: Iterable[Path], active_log_names: set[str],
            log_max_age_s: float, now: float) -> Tally:
    """Delete expired saved outputs, stale temporary files of the store, and expired rotated logs."""
    tally = Tally()
    with OwnedDir(output_dir) as out:
        _delete_expired(out, out.files(NAME_RE), now - output_max_age_s, "outputs", tally)
        _delete_expired(out, out.files(TMP_RE), now - tmp_max_age_s, "tmp", tally)
    if log_dir is None:
        return tally
    with OwnedDir(log_dir) as logs:
        cands = _rotated_candidates(logs, rotated, active_log_names, tally)
        _delete_expired(logs, cands, now - log_max_age_s, "rotated_logs", tally)
    return tally


def _rotated_candidates(logs: OwnedDir, rotated: Iterable[Path], active_log_names: set[str],
                        tally: Tally) -> list[Candidate]:
    """The rotated logs that may be deleted: what the log manager calls rotated AND looks rotated AND sits
    directly in logging.dir as a regular file AND is not a file being written."""
    cands = []
    for path in rotated:
        path = Path(path)
        if (os.path.realpath(path.parent) != logs.real or not ROTATED_LOG_RE.fullmatch(path.name)
                or path.name in active_log_names):
            tally.ignored += 1
            continue
        cand = logs.candidate(path.name)
        if cand is None:
            tally.ignored += 1  # gone, a symlink, or not a regular file
            continue
        cands.append(cand)
    return cands


def delete_oldest_outputs(output_dir: Path, need_bytes: int, shortfall: Callable[[], int] | None = None) -> Tally:
    """Delete saved outputs, oldest first, until ``need_bytes`` (by file size) are freed or none are left.

    ``shortfall``: the bytes still missing, measured now; re-read every ``RECHECK_EVERY`` deletions, because other
    instances sharing the directory free space too and counting only our own deletions would over-delete."""
    tally = Tally()
    missing, since_check = need_bytes, 0
    with OwnedDir(output_dir) as out:
        for cand in sorted(out.files(NAME_RE), key=lambda c: (c.mtime, c.name)):
            if missing <= 0:
                break
            missing -= _remove(out, cand, "outputs", tally)
            since_check += 1
            if shortfall is not None and since_check >= RECHECK_EVERY:
                missing, since_check = shortfall(), 0
    return tally


def delete_oldest_rotated_logs(log_dir: Path, rotated: Iterable[Path], active_log_names: set[str],
                               need_bytes: int) -> Tally:
    """Delete rotated logs (never the live files), oldest first by mtime, until ``need_bytes`` are freed."""
    tally = Tally()
    with OwnedDir(log_dir) as logs:
        cands = _rotated_candidates(logs, rotated, active_log_names, tally)
        for cand in sorted(cands, key=lambda c: (c.mtime, c.name)):
            if tally.bytes_freed >= need_bytes:
                break
            _remove(logs, cand, "rotated_logs", tally)
    return tally


def free_bytes(path: Path, disk_usage: DiskUsage) -> int:
    """Free space of the filesystem ``path`` is (or will be created) on: the nearest existing ancestor."""
    probe = Path(os.path.abspath(path))
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return int(disk_usage(str(probe)).free)
