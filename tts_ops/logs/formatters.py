"""Formatters of the daemon's logs (daemon process): the access-log line, the operator text line, the JSON
line for stderr/journal, and the synthesis JSON line.

Formatters run inside ``Handler.handle`` (under the handler's lock), called from the event loop thread and
from the worker-output pump tasks, so they must be cheap and must not log themselves.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is worth emitting as a
# structured field. "message"/"asctime" are added by Formatter.format; "taskName" exists from Python 3.12.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

# Control characters, quote and backslash are escaped in access-line fields: the path is URL-decoded by
# aiohttp, so a client could otherwise inject a newline (a forged log line) or a quote (break parsing).
_ESCAPES = {c: f"\\x{c:02x}" for c in range(0x20)} | {0x7F: "\\x7f", ord('"'): '\\"', ord("\\"): "\\\\"}


# The last whole second iso_time rendered: (second, "2024-05-01T12:00:00", "+08:00"). Every access and synthesis
# line needs the time, and the local-time conversion (astimezone, isoformat) was a visible share of the CPU of a
# /health or cache hit (bench/frontend_wrk.py); within one second only the milliseconds change. One tuple, replaced
# whole, so threads that log never see half of an update.
_last_second: tuple[int, str, str] = (-1, "", "")


def iso_time(created: float) -> str:
    """Local time, ISO 8601 with milliseconds and UTC offset: 2024-05-01T12:00:00.123+08:00."""
    global _last_second
    second = int(created)
    # Microseconds rounded as datetime.fromtimestamp rounds them; a fraction that rounds up to the next second
    # (or a time before 1970) takes the full conversion.
    micros = round((created - second) * 1_000_000)
    if micros >= 1_000_000 or created < 0:
        return datetime.fromtimestamp(created).astimezone().isoformat(timespec="milliseconds")
    cached_second, stamp, offset = _last_second
    if cached_second != second:
        full = datetime.fromtimestamp(second).astimezone().isoformat(timespec="seconds")
        stamp, offset = full[:19], full[19:]
        _last_second = (second, stamp, offset)
    return f"{stamp}.{micros // 1000:03d}{offset}"


def clean(value: Any) -> str:
    """One access-line field: '-' when absent, escaped so it cannot span or split the line."""
    if value is None or value == "":
        return "-"
    text = value if type(value) is str else str(value)
    # Nearly every field needs no escape, and this test is several times cheaper than translate (nine fields per
    # access line); anything it does not pass (a control, a quote, other non-printables) goes through translate.
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return text.translate(_ESCAPES)


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message>`` with an ISO time; tracebacks follow on their own lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (stderr_format: json): ts, level, logger, message, the extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {"ts": iso_time(record.created), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        for key, value in extras(record).items():
            obj.setdefault(key, value)  # an extra never overwrites the four fixed fields
        if record.exc_info:
            # Cached on the record like Formatter.format does, so other handlers don't re-render it.
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            obj["exc"] = record.exc_text
        if record.stack_info:
            obj["stack"] = self.formatStack(record.stack_info)
        # default=str: extras are arbitrary objects (Paths, enums); a log line must never fail on them.
        return json.dumps(obj, ensure_ascii=False, default=str)


def access_line(created: float, client: Any, method: Any, path: Any, version: Any, status: Any, size: Any,
                latency_ms: Any, cache: Any, worker: Any, request_id: Any) -> str:
    """One access line (``AccessFormatter``'s layout) from its fields; the record path and the direct path
    (``tts_ops.logs.direct``) both write this."""
    latency_text = f"{latency_ms:.1f}ms" if isinstance(latency_ms, (int, float)) else "-"
    return (f'{iso_time(created)} {clean(client)} "{clean(method)} {clean(path)} {clean(version)}" '
            f'{clean(status)} {clean(size)} {latency_text} '
            f'cache={clean(cache)} worker={clean(worker)} request={clean(request_id)}')


class AccessFormatter(logging.Formatter):
    """The access line, built from the ``extra`` fields the middleware attaches to every access record:

    ``<time> <client> "<METHOD> <path> HTTP/x.y" <status> <bytes> <latency>ms cache=<c> worker=<w> request=<id>``

    The path is ``extra["path"]`` without the query string on purpose: a query may carry the text to
    synthesize, which is personal data unless ``logging.log_text`` is on. The HTTP version is not among the
    middleware's extras: it is taken from ``extra["http_version"]`` if present, else from the middleware's
    positional message arguments (4th argument, "HTTP/1.1"), else "-".
    """

    def format(self, record: logging.LogRecord) -> str:
        f = vars(record)
        if "status" not in f or "request_id" not in f:
            # Not a middleware record (someone logged on tts_ops.access directly): keep it, in plain form.
            return f"{iso_time(record.created)} {clean(record.getMessage())}"
        version = f.get("http_version") or self._version_from_args(record.args)
        return access_line(record.created, f.get("client"), f.get("method"), f.get("path"), version,
                           f.get("status"), f.get("bytes"), f.get("latency_ms"), f.get("cache"), f.get("worker"),
                           f.get("request_id"))

    @staticmethod
    def _version_from_args(args: Any) -> str | None:
        if isinstance(args, tuple) and len(args) > 3 and isinstance(args[3], str) and args[3].startswith("HTTP/"):
            return args[3]
        return None


class SynthesisFormatter(logging.Formatter):
    """The synthesis JSON line: the dict ``log_synthesis`` attached as ``extra={"synthesis": ...}``, as is.

    A record without it (a stray direct log call on tts_ops.synthesis) still becomes a JSON line, so every
    line of synthesis.log parses.
    """

    def format(self, record: logging.LogRecord) -> str:
        obj = getattr(record, "synthesis", None)
        if not isinstance(obj, dict):
            obj = {"time": iso_time(record.created), "level": record.levelname, "message": record.getMessage()}
        return synthesis_line(obj)


def synthesis_line(obj: dict[str, Any]) -> str:
    """One synthesis.log line: ``obj`` as JSON, UTF-8 text kept readable; anything not JSON-able as its str."""
    return _SYNTHESIS_JSON.encode(obj)


# What json.dumps(obj, ensure_ascii=False, default=str) builds on every call, built once (a cache hit writes a line).
_SYNTHESIS_JSON = json.JSONEncoder(ensure_ascii=False, default=str)
