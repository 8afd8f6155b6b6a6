"""The synthesis.log lines (daemon process): one JSON line per answer (``log_synthesis``) and the follow-up lines
about an answer already logged (``log_quality``), on logger ``tts_ops.synthesis`` (``manager`` routes it to
synthesis.log and stops it propagating). When that file is all logging would do with the record, the line is written
straight to it (``tts_ops.logs.direct``): a cache hit writes one of these lines, and the record path was a visible
share of its CPU (bench/frontend_wrk.py).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from tts_ops.logs.direct import sole_file
from tts_ops.logs.formatters import SynthesisFormatter, iso_time, synthesis_line

__all__ = ["SYNTHESIS_FIELDS", "log_quality", "log_synthesis"]

SYNTHESIS_FIELDS = ("emotion", "speed", "voice", "format", "audio_s", "synthesis_s", "rtf", "worker", "cache",
                    "status")

_synthesis_log = logging.getLogger("tts_ops.synthesis")


# Memoized: a cache serves repeated texts, so the same digest is asked for again and again. Texts are bounded by
# server.max_text_chars; 1,024 recent ones.
@functools.lru_cache(maxsize=1024)
def text_sha256(text: str) -> str:
    """The hex SHA-256 of ``text`` as UTF-8 (a lone surrogate from client JSON kept, not an error)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def log_synthesis(record: Mapping[str, Any], *, text: str | None, log_text: bool) -> None:
    """Write one synthesis.log JSON line: time, request_id, text_len, text_sha256, [text], emotion, speed, voice,
    format, audio_s, synthesis_s, rtf, worker, cache (HIT/MISS), status, then any other keys of ``record``.

    The text's SHA-256 is always logged (to correlate repeated texts); the raw text only with ``log_text``.
    ``rtf`` is computed from synthesis_s / audio_s when not given; a boolean ``cache`` becomes HIT/MISS.
    """
    if not _synthesis_log.isEnabledFor(logging.INFO):
        return
    obj: dict[str, Any] = {"time": record.get("time") or iso_time(time.time()), "request_id": record.get("request_id")}
    if text is not None:
        obj["text_len"] = len(text)
        obj["text_sha256"] = text_sha256(text)
    else:
        obj["text_len"], obj["text_sha256"] = record.get("text_len"), record.get("text_sha256")
    if log_text and text is not None:
        obj["text"] = text
    for key in SYNTHESIS_FIELDS:
        obj[key] = record.get(key)
    if obj["rtf"] is None and isinstance(obj["audio_s"], (int, float)) and obj["audio_s"] > 0 \
            and isinstance(obj["synthesis_s"], (int, float)):
        obj["rtf"] = round(obj["synthesis_s"] / obj["audio_s"], 4)
    if isinstance(obj["cache"], bool):
        obj["cache"] = "HIT" if obj["cache"] else "MISS"
    for key, value in record.items():
        # "text" never sneaks in through the record: log_text is the only way raw text gets logged.
        if key not in obj and key != "text":
            obj[key] = value
    _write(obj, "synthesis %s", (obj["request_id"],), "log_synthesis")


def _write(obj: dict[str, Any], message: str, args: tuple[Any, ...], caller: str) -> None:
    file = sole_file(_synthesis_log, SynthesisFormatter)
    if file is not None:
        file.write_line(synthesis_line(obj))  # what SynthesisFormatter makes of the record below
        return
    # makeRecord + handle is what .info does, minus the caller lookup (a stack walk) no synthesis line shows: a share
    # of every cache hit's CPU (bench/frontend_wrk.py).
    _synthesis_log.handle(_synthesis_log.makeRecord(_synthesis_log.name, logging.INFO, __file__, 0, message, args, None,
                                                    caller, {"synthesis": obj}))


def log_quality(record: Mapping[str, Any]) -> None:
    """Write a follow-up synthesis.log JSON line about an answer already logged, tied to it by ``request_id``:
    ``{"time", "request_id", "event": "mos", "mos", ...}``. Its ``event`` key tells it from a synthesis line (which
    has none), since a score exists only seconds after the answer's own line was written."""
    if not _synthesis_log.isEnabledFor(logging.INFO):
        return
    obj: dict[str, Any] = {"time": iso_time(time.time()), **{k: v for k, v in record.items() if k != "text"}}
    _write(obj, "%s %s", (obj.get("event"), obj.get("request_id")), "log_quality")
