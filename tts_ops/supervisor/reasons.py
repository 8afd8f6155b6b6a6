"""Why a worker process ended, in words (daemon process, pure logic): the exit description, the error line a
status shows, and the stable category used as a metric label and status key."""

from __future__ import annotations

import signal

from tts_vocab.exit_codes import EXIT_BOOT_FAILURE

__all__ = ["ERROR_LINE_LIMIT", "describe_exit", "error_line", "reason_key"]

ERROR_LINE_LIMIT = 500


def describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == EXIT_BOOT_FAILURE:
        return f"boot failure (exit {code})"
    return f"exit code {code}"


def error_line(message: str) -> str:
    """A worker's ERROR message without its logger name ("tts_ops.worker: boot failed: ..." -> "boot failed:
    ..."), cut to ``ERROR_LINE_LIMIT`` characters for the status document."""
    name, sep, rest = message.partition(": ")
    if sep and name and " " not in name:
        message = rest
    return message[:ERROR_LINE_LIMIT]


def reason_key(reason: str | None) -> str:
    """A stable category for an exit or recycle reason, without configured numbers (metric label, status key):
    ``killed by SIGKILL``, ``exit code 1``, ``boot failure``, ``boot timeout``, ``hung``, ``recycle: rss``,
    ``recycle: requests``."""
    if not reason:
        return "unknown"
    if reason.startswith("recycle: rss"):
        return "recycle: rss"
    if reason.startswith("recycle: served"):
        return "recycle: requests"
    for prefix in ("boot failure", "boot timeout", "hung"):
        if reason.startswith(prefix):
            return prefix
    return reason.split(":")[0]
