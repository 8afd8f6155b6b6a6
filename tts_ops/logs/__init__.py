"""The daemon's logs (daemon process): routing of every record (``manager``), lossless in-process rotation
(``handlers``) and the line formats (``formatters``)."""

from tts_ops.logs.manager import LOG_NAMES, LogManager, log_synthesis, setup_logging

__all__ = ["LOG_NAMES", "LogManager", "log_synthesis", "setup_logging"]
