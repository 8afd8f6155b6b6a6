"""Helpers of the logging tests: a configured manager on a temp dir, access records shaped like the
middleware's, and reading a log back across its current and rotated (gzipped) files."""

from __future__ import annotations

import gzip
import io
import logging
import re
from pathlib import Path

from tts_ops.config import Config, LoggingConfig
from tts_ops.logs.manager import LogManager, setup_logging

ACCESS_LINE = re.compile(
    r'^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) (?P<client>\S+) '
    r'"(?P<method>[A-Z]+) (?P<path>\S+) (?P<version>HTTP/\d\.\d)" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'(?P<latency>\d+\.\d)ms cache=(?P<cache>\S+) worker=(?P<worker>\S+) request=(?P<request>\S+)$')
access_log = logging.getLogger("tts_ops.access")


def configure(log_dir: Path, *, verbose: bool = False, **logging_kw) -> tuple[LogManager, io.StringIO]:
    """setup_logging on ``log_dir`` with ``logging_kw`` overrides; stderr captured in the returned StringIO."""
    stream = io.StringIO()
    config = Config(logging=LoggingConfig(dir=log_dir, **logging_kw))
    return setup_logging(config, verbose, stream=stream), stream


def emit_access(request_id: str, *, status: int = 200, size: int = 1234, latency_ms: float = 12.34,
                path: str = "/tts", cache: str | None = "MISS", worker: str | None = "w1") -> None:
    """The exact call the middleware (tts_ops.http.middleware._log_access) makes."""
    access_log.info(
        "%s %s %s %s %d %d %.1fms cache=%s worker=%s request=%s",
        "127.0.0.1", "POST", path, "HTTP/1.1", status, size, latency_ms, cache or "-", worker or "-", request_id,
        extra={"request_id": request_id, "status": status, "latency_ms": latency_ms, "path": path,
               "method": "POST", "client": "127.0.0.1", "bytes": size, "worker": worker, "cache": cache})


def log_files(manager: LogManager, name: str) -> list[Path]:
    """Rotated files of log ``name`` (oldest first) then the current one."""
    current = manager.paths[name]
    rotated = [p for p in manager.rotated_files() if p.name.startswith(current.name + ".")]
    return rotated + ([current] if current.exists() else [])


def read_text(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return data.decode("utf-8")


def all_lines(manager: LogManager, name: str) -> list[str]:
    manager.wait_background()  # compressions/prunes queued by the rotations
    return [line for path in log_files(manager, name) for line in read_text(path).splitlines()]
