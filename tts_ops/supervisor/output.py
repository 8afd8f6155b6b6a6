"""Relaying a child process's output into the daemon's log (daemon process, on its event loop): a worker's or the
zygote's stdout and stderr, line by line, tagged with its name and pid, at the level it logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

__all__ = ["OUTPUT_LINE_LIMIT", "relay_output"]

worker_log = logging.getLogger("tts_ops.worker")
OUTPUT_LINE_LIMIT = 1 << 20
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
          "CRITICAL": logging.CRITICAL}


async def relay_output(pid: int, stream: asyncio.StreamReader | None, name: str,
                       on_error: Callable[[str], None] | None = None,
                       on_line: Callable[[], None] | None = None) -> None:
    """Relay a child's stdout/stderr line by line, tagged with ``name`` and its pid, at the level it logged;
    ``on_error`` gets each ERROR line (without its level), ``on_line`` is called after every line."""
    assert stream is not None, "the child's output is not piped"
    while True:
        try:
            line = await stream.readline()
        except ValueError:
            # A line longer than the reader's limit: relay what is buffered rather than stop reading, which
            # would fill the pipe and block the child.
            line = await stream.read(OUTPUT_LINE_LIMIT)
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip()
        first, _, rest = text.partition(" ")
        level = LEVELS.get(first)
        worker_log.log(level or logging.INFO, "[%s pid=%s] %s", name, pid, rest if level else text)
        if on_error is not None and level is not None and level >= logging.ERROR:
            on_error(rest)
        if on_line is not None:
            on_line()
