"""Timestamps of synthesised speech (all processes, stdlib only): the typed form the worker sends with its audio
and the daemon answers with (``POST /tts`` with ``"timestamps": true``, captions, stream events).

``Timings.to_wire()`` is the public JSON shape as well as the wire one::

    {"timestamps": [{"text": "今", "start_s": 0.1, "end_s": 0.2}, ...],   # every character once, in order
     "words": [{"text": "今天", "start_s": 0.1, "end_s": 0.33}, ...]}    # after word segmentation

Entries are in text order, times non-decreasing, and the texts of ``timestamps`` concatenate to the request text
(a rewritten span such as "2024年" or "3.5%" is one entry; characters that make no sound have start = end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tts_vocab.errors import InvalidRequest

#: ``"captions"`` of ``POST /tts``: caption format -> (content type, file extension).
CAPTION_FORMATS = {"srt": ("application/x-subrip", "srt"), "vtt": ("text/vtt", "vtt")}


@dataclass(frozen=True)
class Timing:
    """One entry: ``text`` sounds from ``start_s`` to ``end_s`` (seconds from the start of the audio)."""

    text: str
    start_s: float
    end_s: float

    def to_wire(self) -> dict[str, Any]:
        return {"text": self.text, "start_s": self.start_s, "end_s": self.end_s}

    @classmethod
    def from_wire(cls, value: object) -> Timing:
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            raise InvalidRequest("malformed timing: expected {'text', 'start_s', 'end_s'}", "timestamps")
        start, end = value.get("start_s"), value.get("end_s")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (start, end)):
            raise InvalidRequest("malformed timing: start_s and end_s must be numbers", "timestamps")
        return cls(value["text"], float(start), float(end))  # type: ignore[arg-type]  # checked just above

    def shifted(self, seconds: float) -> Timing:
        """The same entry ``seconds`` later (a stream chunk's entries, placed after the chunks before it)."""
        return Timing(self.text, round(self.start_s + seconds, 4), round(self.end_s + seconds, 4))


@dataclass(frozen=True)
class Timings:
    """Per-character (``chars``, public name ``timestamps``) and per-word entries of one audio."""

    chars: tuple[Timing, ...]
    words: tuple[Timing, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {"timestamps": [t.to_wire() for t in self.chars], "words": [t.to_wire() for t in self.words]}

    @classmethod
    def from_wire(cls, body: object) -> Timings:
        """The timings in a decoded JSON object; InvalidRequest when it does not have the shape."""
        if not isinstance(body, dict) or not isinstance(body.get("timestamps"), list) \
                or not isinstance(body.get("words", []), list):
            raise InvalidRequest("malformed timings: expected {'timestamps': [...], 'words': [...]}", "timestamps")
        return cls(tuple(Timing.from_wire(t) for t in body["timestamps"]),
                   tuple(Timing.from_wire(t) for t in body.get("words", [])))

    def shifted(self, seconds: float) -> Timings:
        return Timings(tuple(t.shifted(seconds) for t in self.chars), tuple(t.shifted(seconds) for t in self.words))


__all__ = ["CAPTION_FORMATS", "Timing", "Timings"]
