"""Direct lines (daemon process, event loop thread): an access or synthesis line written straight to its file when
that file is all logging would do with the record.

``setup_logging`` gives ``tts_ops.access`` and ``tts_ops.synthesis`` one file handler each and stops them
propagating. In that set-up building a ``LogRecord``, running it through the logger and handler chain and having the
formatter read its fields back is pure overhead: on a ``/health`` or a cache hit it was the largest share of the
front end's CPU per request (``bench/frontend_wrk.py``). ``sole_file`` says when the set-up is exactly that; any other
(a console at DEBUG, a test's capture handler, a filter, another formatter, the level turned down) takes the ordinary
record path, so the same line is written either way. The write itself is ``ReopenableFileHandler.write_line``: the
handler's lock and one ``os.write``, so rotation and reopening stay lossless.
"""

from __future__ import annotations

import logging

from tts_ops.logs.handlers import ReopenableFileHandler

__all__ = ["sole_file"]


def sole_file(logger: logging.Logger, formatter: type[logging.Formatter]) -> ReopenableFileHandler | None:
    """The file handler an INFO record of ``logger`` would reach and nothing else would, when it formats with
    ``formatter`` exactly; else None (log the record instead)."""
    if logger.disabled or logger.propagate or logger.filters or not logger.isEnabledFor(logging.INFO):
        return None
    handlers = logger.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (type(handler) is not ReopenableFileHandler or handler.filters or handler.level > logging.INFO
            or type(handler.formatter) is not formatter):
        return None
    return handler
