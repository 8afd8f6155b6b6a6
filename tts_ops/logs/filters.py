"""Log filters of the daemon (daemon process).

``MalformedRequestFilter`` sits on aiohttp's ``aiohttp.server`` logger. aiohttp logs every request its HTTP parser
rejects (bad request line, bad header, oversized line: ``HttpProcessingError`` and subclasses such as
``BadHttpMessage``) with ``logger.exception("Error handling request from %s", remote)``: an ERROR with a full
traceback of aiohttp's own parser. That is a client's mistake, not our bug, and any unauthenticated client can
send thousands of them. The filter rewrites such a record in place into one WARNING line (client address and the
parser's reason, no traceback) and rate-limits it per client: ``burst`` lines per ``interval_s``, then silence.
How many were suppressed is said by the client's next line after the interval, or, when that client sends nothing
more, by a summary line once any later malformed request finds its window expired (or evicts it). Every other
record of that logger (a handler that raised, a broken response) keeps its traceback.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp.http_exceptions import HttpProcessingError

AIOHTTP_SERVER_LOGGER = "aiohttp.server"
MALFORMED_BURST = 5
MALFORMED_INTERVAL_S = 60.0
MAX_TRACKED_CLIENTS = 1024


@dataclass
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0


class MalformedRequestFilter(logging.Filter):
    """One WARNING line per malformed request, at most ``burst`` per client per ``interval_s``."""

    def __init__(self, *, burst: int = MALFORMED_BURST, interval_s: float = MALFORMED_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.interval_s = interval_s
        self._clock = clock
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        client = str(record.args[0]) if isinstance(record.args, tuple) and record.args else "-"
        suppressed = self._admit(client)
        if suppressed is None:
            return False
        reason = " ".join(str(exc.message or type(exc).__name__).split())[:200]
        record.msg = "malformed HTTP request from %s: %s (%s)"
        record.args = (client, reason, type(exc).__name__)
        if suppressed:
            record.msg += "; %d more suppressed from this client"
            record.args += (suppressed,)
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True

    def _report_silent(self, now: float, client: str) -> None:
        """Summaries for other clients whose window ended with suppressed lines and who have not come back."""
        expired = [(other, w) for other, w in self._windows.items()
                   if other != client and w.suppressed and now - w.start >= self.interval_s]
        while len(self._windows) > MAX_TRACKED_CLIENTS:
            oldest, window = self._windows.popitem(last=False)
            if window.suppressed:
                expired.append((oldest, window))
        for other, window in expired:
            self._windows.pop(other, None)
            logging.getLogger(AIOHTTP_SERVER_LOGGER).warning(
                "%d more malformed HTTP requests from %s were suppressed", window.suppressed, other)

    def _admit(self, client: str) -> int | None:
        """None to drop this record; else the count suppressed in the client's previous window."""
        now = self._clock()
        self._report_silent(now, client)
        window = self._windows.get(client)
        suppressed = 0
        if window is None or now - window.start >= self.interval_s:
            suppressed = window.suppressed if window is not None else 0
            window = _Window(now)
            self._windows[client] = window
        self._windows.move_to_end(client)
        if window.logged >= self.burst:
            window.suppressed += 1
            return None
        window.logged += 1
        return suppressed
