"""Logging set-up of the daemon (daemon process): where every record goes, and the rotation of the log files.

Routing (``setup_logging``):
- ``access.log``   logger ``tts_ops.access``, one line per request (``AccessFormatter``); not propagated, so
                   access lines reach neither error.log nor stderr (stderr gets them only at DEBUG/--verbose);
- ``error.log``    WARNING and above from every logger, with tracebacks, plus every line of worker output
                   (logger ``tts_ops.worker``) at any level;
- ``synthesis.log`` JSON lines from ``log_synthesis`` (logger ``tts_ops.synthesis``, not propagated);
- stderr           operator messages at ``logging.level`` and above, as text or JSON (``stderr_format``), which
                   systemd's journal captures; or python-systemd's JournalHandler when ``journald: true`` and it
                   is installed.

Handlers are called from the event loop thread and from the worker-output pump tasks (and any thread that
logs). Rotation is ours (see ``tts_ops.logs.handlers`` for why not the stdlib rotating handlers): the
maintenance scheduler calls ``LogManager.scheduled_rotate()`` on ``LogManager.schedule``; SIGUSR1 calls
``reopen_all()``. Renaming is done under each handler's lock (lossless); gzip and pruning run afterwards in
one background thread, so the event loop is blocked only for a rename and an open.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from tts_ops.config import Config, LoggingConfig
from tts_ops.logs.filters import AIOHTTP_SERVER_LOGGER, MalformedRequestFilter
from tts_ops.logs.formatters import AccessFormatter, JsonFormatter, SynthesisFormatter, TextFormatter
from tts_ops.logs.handlers import (
    ReopenableFileHandler,
    Rotated,
    StderrHandler,
    compress,
    prune,
    recover,
    report,
    rotated_files,
)

LOG_NAMES = ("access", "error", "synthesis")
SIZE_CHECK_INTERVAL_S = 60

log = logging.getLogger("tts_ops.logs")
_setup_lock = threading.Lock()
_current: LogManager | None = None


class _ErrorLogFilter(logging.Filter):
    """error.log: WARNING+ from anyone, worker output at any level."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno >= logging.WARNING or record.name == "tts_ops.worker"
                or record.name.startswith("tts_ops.worker."))


class LogManager:
    """The daemon's log files: rotation, reopening, and what the scheduler and admin API need to see."""

    def __init__(self, directory: Path, handlers: dict[str, ReopenableFileHandler], *, when: str, max_bytes: int,
                 keep: int, compress: bool, max_age_days: float | None) -> None:
        self.directory = directory
        self.handlers = handlers
        self.when = when
        self.max_bytes = max_bytes
        self.keep = keep
        self.compress = compress
        self.max_age_days = max_age_days
        self._lock = threading.Lock()  # guards the counters below, not the files (each handler has its lock)
        self._rotations = 0  # log files rotated (one per file, not per rotate_all call)
        self._last_rotation: datetime | None = None
        self._pruned_files = 0  # rotated files deleted by keep-N / age pruning, and their bytes
        self._pruned_bytes = 0
        self._closed = False
        self._restore: list[Callable[[], None]] = []  # undo of setup_logging's changes to loggers
        # One thread, so compressions and prunes of the same log never race each other.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-rotate")
        self._period = self._floor(self._oldest_content())

    # -- what the scheduler needs ------------------------------------------------------------------------------

    @property
    def paths(self) -> dict[str, Path]:
        return {name: h.path for name, h in self.handlers.items()}

    @property
    def schedule(self) -> tuple[str, dict[str, int]]:
        """The trigger for ``scheduled_rotate``: cron at 00:00 local (daily), at :00 (hourly), or an interval
        size check (size)."""
        if self.when == "daily":
            return "cron", {"hour": 0, "minute": 0}
        if self.when == "hourly":
            return "cron", {"minute": 0}
        return "interval", {"seconds": SIZE_CHECK_INTERVAL_S}

    def scheduled_rotate(self) -> dict[str, dict[str, Any]]:
        """What the scheduler runs: a forced rotation on cron (so a job firing a few ms before the boundary
        still rotates), a size check on the interval."""
        return self.rotate_all() if self.when in ("daily", "hourly") else self.rotate_if_due()

    def due(self, now: datetime | float | None = None) -> bool:
        """Size mode: a file is above rotate_max_bytes. Daily/hourly: a period boundary passed since the last
        rotation (or since the oldest line of the current files, so a daemon down over midnight catches up)."""
        if self.when == "size":
            return bool(self._oversized())
        return self._floor(_as_datetime(now)) > self._period

    def rotate_if_due(self, now: datetime | float | None = None) -> dict[str, dict[str, Any]]:
        if self.when == "size":
            return self._rotate(self._oversized(), _as_datetime(now))
        return self.rotate_all(now) if self.due(now) else {}

    # -- rotation and reopening ---------------------------------------------------------------------------------

    def rotate_all(self, now: datetime | float | None = None, *, wait: bool = False) -> dict[str, dict[str, Any]]:
        """Rotate every non-empty log now. Returns ``{name: {"file": final path, "bytes": size}}`` for those
        rotated; the file becomes ``.gz`` once the background compression ran (``wait=True`` waits for it)."""
        result = self._rotate(list(self.handlers), _as_datetime(now))
        if wait:
            self.wait_background()
        return result

    def reopen_all(self) -> dict[str, bool]:
        """Reopen every log file at its path (SIGUSR1 after an external logrotate); name -> open now."""
        return {name: h.reopen() for name, h in self.handlers.items()}

    def rotated_files(self) -> list[Path]:
        """Every rotated file (plain or .gz) of every log, oldest first per log."""
        return [path for h in self.handlers.values() for _, _, path in rotated_files(h.path)]

    def wait_background(self, timeout: float | None = None) -> None:
        """Block until the queued compressions and prunes are done (the queue is served in order)."""
        if not self._closed:
            self._executor.submit(lambda: None).result(timeout)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            rotations, last = self._rotations, self._last_rotation
            pruned_files, pruned_bytes = self._pruned_files, self._pruned_bytes
        return {"rotations": rotations, "last_rotation": last.isoformat() if last else None,
                "pruned_files": pruned_files, "pruned_bytes": pruned_bytes,
                "bytes_written": {name: h.bytes_written for name, h in self.handlers.items()},
                "dropped": {name: h.dropped for name, h in self.handlers.items()},
                "size": {name: h.size() for name, h in self.handlers.items()},
                "open": {name: h.is_open for name, h in self.handlers.items()}}

    def close(self) -> None:
        """Detach the handlers, undo the logger changes, finish background work, close the files."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        global _current
        with _setup_lock:
            if _current is self:
                _current = None
            for undo in reversed(self._restore):
                undo()
        self._executor.shutdown(wait=True)
        for handler in self.handlers.values():
            handler.close()

    # -- internals ------------------------------------------------------------------------------------------------

    def _rotate(self, names: list[str], now: datetime) -> dict[str, dict[str, Any]]:
        if self._closed:
            return {}
        result: dict[str, dict[str, Any]] = {}
        for name in names:
            rotated = self.handlers[name].rotate(now)
            if rotated is not None:
                final = rotated.path.with_name(rotated.path.name + ".gz") if self.compress else rotated.path
                result[name] = {"file": str(final), "bytes": rotated.bytes}
                self._submit(self._after_rotation, self.handlers[name].path, rotated)
        with self._lock:
            if self.when != "size":
                self._period = max(self._period, self._floor(now))
            if result:
                self._rotations += len(result)
                self._last_rotation = now
        return result

    def _after_rotation(self, log_path: Path, rotated: Rotated) -> None:
        if self.compress:
            compress(rotated.path)
        self._prune(log_path)

    def _recover(self) -> None:
        for handler in self.handlers.values():
            recover(handler.path, self.compress)
            self._prune(handler.path)

    def _prune(self, log_path: Path) -> None:
        removed = prune(log_path, self.keep, self.max_age_days)
        if removed:
            # Counted so the files_deleted / bytes_freed metrics include what keep-N deletes, not only what
            # the maintenance cleanup deletes.
            with self._lock:
                self._pruned_files += len(removed)
                self._pruned_bytes += sum(size for _, size in removed)

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        def job() -> None:
            try:
                fn(*args)
            except Exception as exc:  # a background failure must not vanish silently in a Future
                report(f"log rotation housekeeping failed: {exc!r}")

        try:
            self._executor.submit(job)
        except RuntimeError:  # executor shut down by close(): run it here rather than lose it
            job()

    def _oversized(self) -> list[str]:
        return [name for name, h in self.handlers.items() if h.size() > self.max_bytes]

    def _oldest_content(self) -> datetime:
        oldest = time.time()
        for h in self.handlers.values():
            try:
                st = h.path.stat()
            except OSError:
                continue
            if st.st_size:
                # Last write time: if that is in an earlier period, the whole file is (Linux has no birth time
                # in os.stat, and ctime changes with every write too).
                oldest = min(oldest, st.st_mtime)
        return datetime.fromtimestamp(oldest)

    def _floor(self, t: datetime) -> datetime:
        if self.when == "daily":
            return t.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.when == "hourly":
            return t.replace(minute=0, second=0, microsecond=0)
        return t


def _as_datetime(now: datetime | float | None) -> datetime:
    if now is None:
        return datetime.now()
    return datetime.fromtimestamp(now) if isinstance(now, (int, float)) else now


def setup_logging(config: Config, verbose: bool = False, *, stream: TextIO | None = None) -> LogManager:
    """Configure the root and tts_ops loggers from ``config.logging``; return the manager of the log files.

    Calling it again (tests, config reload) closes the previous manager first, so handlers never pile up.
    ``stream`` replaces stderr (tests). Never raises for an unusable log directory: that is reported once on
    stderr and the daemon logs to stderr only.
    """
    global _current
    lc = config.logging
    level = logging.DEBUG if verbose else getattr(logging, lc.level)
    if _current is not None:
        _current.close()
    with _setup_lock:
        directory = Path(lc.dir).expanduser().absolute()
        dir_error: OSError | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            dir_error = exc
        handlers = {name: ReopenableFileHandler(directory / f"{name}.log", quiet_open_failure=dir_error is not None)
                    for name in LOG_NAMES}
        handlers["access"].setFormatter(AccessFormatter())
        handlers["synthesis"].setFormatter(SynthesisFormatter())
        handlers["error"].setFormatter(TextFormatter())
        handlers["error"].addFilter(_ErrorLogFilter())
        manager = LogManager(directory, handlers, when=lc.rotate_when, max_bytes=lc.rotate_max_bytes, keep=lc.keep,
                             compress=lc.compress, max_age_days=config.output.rotated_log_retention_days)

        console, journald_error = _console_handler(lc, stream)
        console.setLevel(level)
        _detach_consoles(manager)
        _configure(manager, "", level=level, handlers=[console, handlers["error"]])
        # Access and synthesis records are records of requests, not severities: always written, never
        # propagated (an access line is not an operator message); stderr sees access lines only at DEBUG.
        _configure(manager, "tts_ops.access", level=logging.INFO, propagate=False,
                   handlers=[handlers["access"]] + ([console] if level <= logging.DEBUG else []))
        _configure(manager, "tts_ops.synthesis", level=logging.INFO, propagate=False, handlers=[handlers["synthesis"]])
        # Worker output at any level goes to error.log; the console handler's own level still filters stderr.
        _configure(manager, "tts_ops.worker", level=logging.DEBUG)
        # aiohttp's own access logger is off; ours is tts_ops.access.
        _configure(manager, "aiohttp.access", level=logging.WARNING)
        # A request aiohttp's parser rejects is the client's mistake: one rate-limited WARNING, no traceback.
        _add_filter(manager, AIOHTTP_SERVER_LOGGER, MalformedRequestFilter())
        _current = manager

    if dir_error is not None:
        log.warning("cannot use log directory %s (%s): log files disabled, logging to stderr only", directory,
                    dir_error)
    if journald_error is not None:
        log.warning("journald: true but python-systemd's JournalHandler is unavailable (%s): logging to stderr",
                    journald_error)
    manager._submit(manager._recover)  # leftovers of a crash mid-compression; prune to keep/retention
    if manager.when != "size" and manager.due():
        # The files were last written in an earlier day/hour (daemon down over the boundary): the scheduler
        # would only rotate at the next boundary, mixing two periods in one file.
        manager.rotate_all()
    return manager


def _console_handler(lc: LoggingConfig, stream: TextIO | None) -> tuple[logging.Handler, Exception | None]:
    if lc.journald:
        try:
            from systemd.journal import JournalHandler  # optional (python3-systemd): imported only when asked for

            handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="tts-ops")
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))  # the journal has time and level
            return handler, None
        except Exception as exc:  # ImportError, or no journal socket
            error: Exception | None = exc
    else:
        error = None
    handler = StderrHandler(stream)
    handler.setFormatter(JsonFormatter() if lc.stderr_format == "json" else TextFormatter())
    return handler, error


def _detach_consoles(manager: LogManager) -> None:
    """Take off the root's existing stderr/stdout handlers (``tts-ops`` main's basicConfig): with ours they
    would print every operator line twice. Others (pytest's capture, files) stay; close() puts these back."""
    root = logging.getLogger()
    # Exactly these types (a file handler is a StreamHandler subclass too); isinstance only tells mypy so.
    consoles = [h for h in root.handlers if type(h) in (logging.StreamHandler, StderrHandler)
                and isinstance(h, logging.StreamHandler)
                and h.stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)]
    for handler in consoles:
        root.removeHandler(handler)

    def undo() -> None:
        for handler in consoles:
            root.addHandler(handler)

    manager._restore.append(undo)


def _configure(manager: LogManager, name: str, *, level: int, propagate: bool | None = None,
               handlers: Sequence[logging.Handler] = ()) -> None:
    """Apply settings to a logger, recording how to undo them in ``manager.close()``."""
    logger = logging.getLogger(name or None)
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(level)
    if propagate is not None:
        logger.propagate = propagate
    for handler in handlers:
        logger.addHandler(handler)

    def undo() -> None:
        for handler in handlers:
            logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate

    manager._restore.append(undo)


def _add_filter(manager: LogManager, name: str, log_filter: logging.Filter) -> None:
    logger = logging.getLogger(name)
    logger.addFilter(log_filter)
    manager._restore.append(lambda: logger.removeFilter(log_filter))
