"""Captions from timestamps (daemon process, pure): SubRip (``.srt``) and WebVTT (``.vtt``) files for
``POST /tts`` with ``"captions": "srt"|"vtt"``, and the JSON answer of ``"timestamps": true``.

A cue is a line of text as a subtitle shows it: it ends after sentence punctuation (。！？…, a line break), after
clause punctuation (，、；：) once it holds ``MIN_CUE_CHARS`` characters, and at ``MAX_CUE_CHARS`` characters
otherwise (common practice for Chinese subtitles is 15-20 characters a line). Its times are those of its first and
last characters that make a sound, so a cue never starts in the silence before it. Both formats are written by
hand: they are a few lines of text, and neither has a well-kept library among our dependencies.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tts_vocab.timings import Timing, Timings

__all__ = ["Cue", "captions", "cues", "timed_body"]
MIN_CUE_CHARS = 8
MAX_CUE_CHARS = 20
_SENTENCE_END = set("。！？!?…\n")
_CLAUSE_END = set("，,、；;：:")


@dataclass(frozen=True)
class Cue:
    text: str
    start_s: float
    end_s: float


def cues(timings: Sequence[Timing]) -> list[Cue]:
    """The caption lines of ``timings`` in order; whitespace-only lines are dropped."""
    out: list[Cue] = []
    line: list[Timing] = []
    for timing in timings:
        line.append(timing)
        length = sum(len(t.text.strip()) for t in line)
        last = timing.text.rstrip(" ")[-1:] if timing.text.strip(" ") else ""
        if last in _SENTENCE_END or (last in _CLAUSE_END and length >= MIN_CUE_CHARS) or length >= MAX_CUE_CHARS:
            out.extend(_cue(line))
            line = []
    out.extend(_cue(line))
    return out


def _cue(line: list[Timing]) -> list[Cue]:
    text = " ".join("".join(t.text for t in line).split())
    if not text:
        return []
    sounding = [t for t in line if t.end_s > t.start_s] or line
    return [Cue(text, sounding[0].start_s, max(sounding[-1].end_s, sounding[0].start_s))]


def captions(timings: Sequence[Timing], fmt: str) -> str:
    """The caption file of ``timings`` in ``fmt`` ("srt" or "vtt")."""
    lines = ["WEBVTT", ""] if fmt == "vtt" else []
    separator = "." if fmt == "vtt" else ","
    for number, cue in enumerate(cues(timings), 1):
        if fmt == "srt":
            lines.append(str(number))
        lines.append(f"{_clock(cue.start_s, separator)} --> {_clock(cue.end_s, separator)}")
        lines.extend([_cue_text(cue.text, fmt), ""])
    return "\n".join(lines) + ("\n" if lines and lines[-1] else "")


def _cue_text(text: str, fmt: str) -> str:
    """A client's text as cue payload: "-->" would read as a timing line, and in WebVTT "&" and "<" start markup."""
    text = text.replace("-->", "->")
    if fmt == "vtt":
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def timed_body(audio: bytes, fmt: str, sample_rate: int, duration_s: float, timings: Timings) -> dict[str, Any]:
    """The JSON answer of ``"timestamps": true``: the audio in base64 with its format, rate and duration, then the
    per-character ``timestamps`` and per-word ``words``."""
    return {"audio": base64.b64encode(audio).decode("ascii"), "format": fmt, "sample_rate": sample_rate,
            "duration_s": duration_s, **timings.to_wire()}
