"""The SSML subset as it crosses the worker socket (all processes): a typed script of spoken text and pauses.

The daemon parses a request's ``<speak>`` document once (``tts_ops.http.ssml``: defusedxml, say-as expanded to
Chinese characters) into a ``Script`` and sends it in ``SynthesisJob.ssml``; the worker rebuilds it with
``Script.from_wire``, which validates every field once where it enters the process, and renders it
(``inference.engines.script``). The request's raw SSML stays the job's ``text``, so it is what the cache key holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tts_vocab.emotions import normalize_emotion
from tts_vocab.errors import InvalidRequest
from tts_vocab.lexicon import is_syllable

__all__ = ["BREAK_STRENGTHS", "MAX_BREAK_S", "MAX_SEGMENTS", "MAX_TOTAL_BREAK_S", "Pause", "Say", "Script", "Segment"]

#: Longest single ``<break>``, in seconds (Azure's limit is 5 s; 10 s leaves room for a dramatic pause).
MAX_BREAK_S = 10.0
#: Most silence all of a document's breaks may add up to: a short request must not make a worker hold minutes of
#: audio (215 breaks of 10 s fit in 4,096 characters: 36 minutes, over 1 GB of samples in the worker).
MAX_TOTAL_BREAK_S = 60.0
#: Most segments one document may hold: bounds the worker's work per request whatever the markup.
MAX_SEGMENTS = 500
#: ``<break strength="...">`` in seconds (W3C's names, Azure's durations).
BREAK_STRENGTHS = {"none": 0.0, "x-weak": 0.25, "weak": 0.5, "medium": 0.75, "strong": 1.0, "x-strong": 1.25}
FIELD = "ssml"


@dataclass(frozen=True)
class Say:
    """Text to speak. ``emotion``: the enclosing ``<emotion>``'s (None = the request's). ``pinyin``: a
    ``<phoneme alphabet="py">``'s readings, one tone-numbered syllable per character of ``text`` (() = the
    engine's own reading)."""

    text: str
    emotion: str | None = None
    pinyin: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pause:
    """A ``<break>``: silence of ``seconds``."""

    seconds: float


Segment = Say | Pause


@dataclass(frozen=True)
class Script:
    """A parsed ``<speak>`` document in reading order."""

    segments: tuple[Segment, ...]

    def to_wire(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for segment in self.segments:
            if isinstance(segment, Pause):
                out.append({"break_s": segment.seconds})
            else:
                item: dict[str, Any] = {"text": segment.text}
                if segment.emotion is not None:
                    item["emotion"] = segment.emotion
                if segment.pinyin:
                    item["pinyin"] = list(segment.pinyin)
                out.append(item)
        return out

    @classmethod
    def from_wire(cls, value: object) -> Script:
        """The script in a decoded JSON list; InvalidRequest naming ``ssml`` when it does not have the shape."""
        if not isinstance(value, list) or not value or len(value) > MAX_SEGMENTS:
            raise InvalidRequest(f"'ssml' must be a list of 1 to {MAX_SEGMENTS} segments", FIELD)
        script = cls(tuple(_segment(item) for item in value))
        if script.pause_s > MAX_TOTAL_BREAK_S:
            raise InvalidRequest(f"SSML breaks add up to {script.pause_s:g}s; the limit is {MAX_TOTAL_BREAK_S:g}s",
                                 FIELD)
        return script

    @property
    def pause_s(self) -> float:
        """The silence all ``<break>``s add up to."""
        return sum(segment.seconds for segment in self.segments if isinstance(segment, Pause))

    @property
    def spoken(self) -> str:
        """The text of every ``Say``, concatenated (what is read aloud, for logs and checks)."""
        return "".join(s.text for s in self.segments if isinstance(s, Say))


def _segment(item: object) -> Segment:
    if isinstance(item, dict) and set(item) == {"break_s"}:
        seconds = item["break_s"]
        if (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds)
                or not 0 <= seconds <= MAX_BREAK_S):
            raise InvalidRequest(f"'ssml' break must be 0..{MAX_BREAK_S} seconds, got {seconds!r}", FIELD)
        return Pause(float(seconds))
    if not isinstance(item, dict) or "text" not in item or set(item) - {"text", "emotion", "pinyin"}:
        raise InvalidRequest(f"'ssml' segment must be {{text, emotion?, pinyin?}} or {{break_s}}, got {item!r:.80}",
                             FIELD)
    text, emotion, pinyin = item["text"], item.get("emotion"), item.get("pinyin", [])
    if not isinstance(text, str) or not text:
        raise InvalidRequest("'ssml' segment text must be a non-empty string", FIELD)
    if not isinstance(pinyin, list) or not all(isinstance(p, str) and is_syllable(p) for p in pinyin):
        raise InvalidRequest(f"'ssml' pinyin must be tone-numbered syllables, got {pinyin!r:.80}", FIELD)
    if pinyin and len(pinyin) != len(text):
        raise InvalidRequest(f"'ssml' pinyin has {len(pinyin)} syllables for {len(text)} characters", FIELD)
    return Say(text, None if emotion is None else normalize_emotion(emotion), tuple(pinyin))
