"""The daemon's logs (daemon process): routing of every record (``manager``), lossless in-process rotation
(``handlers``), the line formats (``formatters``), the synthesis.log lines (``synthesis``) and the direct writes of
access and synthesis lines (``direct``)."""

from tts_ops.logs.manager import LOG_NAMES, LogManager, setup_logging
from tts_ops.logs.synthesis import log_synthesis

__all__ = ["LOG_NAMES", "LogManager", "log_synthesis", "setup_logging"]
