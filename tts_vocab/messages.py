"""The messages that cross the worker socket (daemon and worker processes): the typed job and its reply's metadata.

The daemon builds a ``SynthesisJob`` from a validated client request and sends ``job.to_wire()`` as the JSON body
of ``POST /synthesize``; the worker rebuilds it with ``SynthesisJob.from_wire(body)``, which validates every field
once where it enters the worker process. The reply is the encoded audio as the body with its metadata in headers:
``SynthesisReply.to_headers()`` on the worker, ``SynthesisReply.from_headers()`` on the daemon (the one place
the numbers are parsed back). A job with ``timestamps`` gets its timings as a JSON trailer after the audio, its
length in ``X-Timings-Bytes``: ``SynthesisReply.to_wire()`` / ``SynthesisReply.from_wire(headers, body)``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tts_vocab import headers
from tts_vocab.emotions import normalize_emotion
from tts_vocab.errors import InvalidRequest
from tts_vocab.fields import parse_flag, parse_pause, parse_sample_rate, parse_speed, parse_text, parse_voice
from tts_vocab.formats import normalize_format
from tts_vocab.ssml import Script
from tts_vocab.timings import Timings

#: Most distinct unreadable code points one reply names: the header stays far below HTTP's 8 KiB header limit
#: whatever the text (64 x "U+10FFFD " is 576 bytes); beyond them the reply names how many more there were.
MAX_SKIPPED = 64

_JOB_FIELDS = ("text", "emotion", "speed", "voice", "format", "sample_rate", "chunk", "pause_after_s", "ssml",
               "timestamps")


@dataclass(frozen=True)
class SynthesisJob:
    """One synthesis a worker runs: a whole text, or one chunk of a stream (``chunk``: no re-splitting, and
    ``pause_after_s`` of silence appended so that compressed chunks carry the inter-chunk pause in their frames)."""

    text: str
    emotion: str = "neutral"
    speed: float = 1.0
    #: None = the engine's default voice (the daemon canonicalises, so one audio has one cache key).
    voice: str | None = None
    format: str = "wav"
    #: None = the engine's own rate.
    sample_rate: int | None = None
    chunk: bool = False
    pause_after_s: float = 0.0
    #: The parsed SSML document when ``text`` is one (``<speak>...``), rendered instead of ``text``; None = plain text.
    ssml: Script | None = None
    #: Reply with per-character and per-word times (``SynthesisReply.timings``).
    timestamps: bool = False

    def to_wire(self) -> dict[str, Any]:
        wire = {name: getattr(self, name) for name in _JOB_FIELDS if name != "ssml"}
        if self.ssml is not None:  # absent for plain text: the wire of every other job is unchanged
            wire["ssml"] = self.ssml.to_wire()
        return wire

    @classmethod
    def from_wire(cls, body: object) -> SynthesisJob:
        """The job in a decoded JSON body; InvalidRequest naming the first bad or unknown field."""
        body = _object_of(body, _JOB_FIELDS)
        return cls(
            text=parse_text(body.get("text")),
            emotion=normalize_emotion(body.get("emotion")),
            speed=parse_speed(body.get("speed")),
            voice=parse_voice(body.get("voice")),
            format=normalize_format(body.get("format") or "wav"),
            sample_rate=parse_sample_rate(body.get("sample_rate")),
            chunk=parse_flag(body.get("chunk", False), "chunk"),
            pause_after_s=parse_pause(body.get("pause_after_s", 0.0)),
            ssml=None if body.get("ssml") is None else Script.from_wire(body["ssml"]),
            timestamps=parse_flag(body.get("timestamps", False), "timestamps"),
        )

    def replace(self, **changes: Any) -> SynthesisJob:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class PhonemizeRequest:
    """A request for the phonemizer view of ``text`` (``POST /phonemize`` on a worker, ``POST /frontend``)."""

    text: str

    def to_wire(self) -> dict[str, Any]:
        return {"text": self.text}

    @classmethod
    def from_wire(cls, body: object) -> PhonemizeRequest:
        """The request in a decoded JSON body (``{"text": str}`` and nothing else); InvalidRequest naming the field."""
        return cls(parse_text(_object_of(body, ("text",)).get("text")))


def _object_of(body: object, fields: tuple[str, ...]) -> dict[str, Any]:
    """``body`` as a JSON object holding none but ``fields``; InvalidRequest naming the first unknown one."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    return body


@dataclass(frozen=True)
class SynthesisReply:
    """Metadata of a worker's answer; its body is the encoded audio."""

    sample_rate: int
    duration_s: float
    #: Seconds the worker spent synthesising and encoding.
    synthesis_s: float
    engine: str = ""
    model_version: str = ""
    worker_pid: int | None = None
    #: Distinct characters of the text the voice could not read, as ``U+XXXX`` code points in order of first
    #: appearance (logged, never silent), at most MAX_SKIPPED of them; ``more_skipped``: how many distinct ones more.
    skipped: tuple[str, ...] = ()
    more_skipped: int = 0
    #: The audio's timestamps, for a job that asked for them (None otherwise).
    timings: Timings | None = None

    @classmethod
    def code_points(cls, chars: Iterable[str]) -> tuple[tuple[str, ...], int]:
        """(the first MAX_SKIPPED distinct code points of ``chars`` as ``U+XXXX``, how many distinct ones more)."""
        distinct = list(dict.fromkeys(f"U+{ord(char):04X}" for char in chars))
        return tuple(distinct[:MAX_SKIPPED]), max(0, len(distinct) - MAX_SKIPPED)

    def to_headers(self) -> dict[str, str]:
        out = {headers.SAMPLE_RATE: str(self.sample_rate), headers.AUDIO_DURATION: f"{self.duration_s:.3f}",
               headers.SYNTHESIS_TIME: f"{self.synthesis_s:.3f}"}
        if self.engine:
            out[headers.ENGINE] = self.engine
        if self.model_version:
            out[headers.MODEL_VERSION] = self.model_version
        if self.worker_pid is not None:
            out[headers.WORKER_PID] = str(self.worker_pid)
        if self.skipped:
            more = f" +{self.more_skipped}" if self.more_skipped else ""
            out[headers.SKIPPED_CHARS] = " ".join(self.skipped) + more
        if self.timings is not None:
            out[headers.TIMINGS_BYTES] = str(len(self.to_wire()))
        return out

    def to_wire(self) -> bytes:
        """The trailer sent after the audio: the timings as UTF-8 JSON (empty without timings)."""
        if self.timings is None:
            return b""
        return json.dumps(self.timings.to_wire(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_wire(cls, values: Mapping[str, str], body: bytes) -> tuple[SynthesisReply, bytes]:
        """(the reply, its audio) from a worker's headers and body, the timings trailer split off and parsed;
        InvalidRequest naming the header when the trailer does not fit or is not timings."""
        reply = cls.from_headers(values)
        size = int(_number(values, headers.TIMINGS_BYTES, int))
        if headers.TIMINGS_BYTES not in values:
            return reply, body
        if not 0 <= size <= len(body):
            raise InvalidRequest(f"worker header {headers.TIMINGS_BYTES} exceeds the body", headers.TIMINGS_BYTES)
        try:
            timings = Timings.from_wire(json.loads(body[len(body) - size:]))
        except ValueError as exc:  # not JSON, or InvalidRequest for the wrong shape
            raise InvalidRequest(f"worker timings are malformed: {exc}", headers.TIMINGS_BYTES) from None
        return dataclasses.replace(reply, timings=timings), body[:len(body) - size]

    @classmethod
    def from_headers(cls, values: Mapping[str, str]) -> SynthesisReply:
        """The reply described by a worker's response headers. A missing number is 0 (a worker that does not say);
        a malformed one is a protocol error (InvalidRequest naming the header)."""
        pid = values.get(headers.WORKER_PID)
        return cls(
            sample_rate=int(_number(values, headers.SAMPLE_RATE, int)),
            duration_s=_number(values, headers.AUDIO_DURATION, float),
            synthesis_s=_number(values, headers.SYNTHESIS_TIME, float),
            engine=values.get(headers.ENGINE, ""),
            model_version=values.get(headers.MODEL_VERSION, ""),
            worker_pid=int(_number(values, headers.WORKER_PID, int)) if pid else None,
            **_skipped(values.get(headers.SKIPPED_CHARS, "")),
        )

    def model_headers(self) -> dict[str, str]:
        """The headers describing the model, forwarded to the client unchanged."""
        out = {}
        if self.engine:
            out[headers.ENGINE] = self.engine
        if self.model_version:
            out[headers.MODEL_VERSION] = self.model_version
        return out


def _skipped(raw: str) -> dict[str, Any]:
    words = raw.split()
    more = words.pop() if words and words[-1].startswith("+") else "+0"
    if not more[1:].isdigit() or any(not word.startswith("U+") for word in words):
        raise InvalidRequest(f"worker header {headers.SKIPPED_CHARS} is malformed: {raw[:40]!r}", headers.SKIPPED_CHARS)
    return {"skipped": tuple(words[:MAX_SKIPPED]), "more_skipped": int(more[1:])}


def _number(values: Mapping[str, str], name: str, kind: type[int] | type[float]) -> float:
    raw = values.get(name)
    if not raw:
        return 0.0
    try:
        return float(kind(raw))
    except ValueError:
        raise InvalidRequest(f"worker header {name} is not a number: {raw[:40]!r}", name) from None


@dataclass(frozen=True)
class FrontendChunk:
    """One chunk as the model receives it: its text, one pinyin syllable per spoken syllable (TONE3, as sent:
    sandhi applied, neutral tone 5, erhua ``er5``) and the model's input symbols."""

    text: str
    pinyin: tuple[str, ...]
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class FrontendView:
    """The phonemizer view of a text (``POST /frontend``, ``tts-ops frontend``): what the model would be given.
    ``skipped``: characters the voice cannot read, as ``U+XXXX`` code points with the character."""

    normalized: str
    chunks: tuple[FrontendChunk, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    def to_wire(self) -> dict[str, Any]:
        """The public shape, ``{"normalized", "chunks": [{"text", "pinyin", "symbols"}]}``, plus ``skipped``."""
        return {"normalized": self.normalized,
                "chunks": [{"text": c.text, "pinyin": list(c.pinyin), "symbols": list(c.symbols)} for c in self.chunks],
                "skipped": [{"char": char, "code_point": code} for char, code in self.skipped]}

    def public(self) -> dict[str, Any]:
        """Exactly ``{"normalized", "chunks"}``: what ``tts-ops frontend --json`` prints and ``/frontend`` answers."""
        wire = self.to_wire()
        del wire["skipped"]
        return wire

    @classmethod
    def from_wire(cls, body: object) -> FrontendView:
        """The view in a worker's JSON answer; InvalidRequest when it does not have the shape."""
        if not isinstance(body, dict) or not isinstance(body.get("normalized"), str):
            raise InvalidRequest("malformed frontend view from a worker: no 'normalized' string")
        try:
            chunks = tuple(FrontendChunk(_text(c["text"]), _strings(c["pinyin"]), _strings(c["symbols"]))
                           for c in body["chunks"])
            skipped = tuple((_text(s["char"]), _text(s["code_point"])) for s in body.get("skipped", ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRequest(f"malformed frontend view from a worker: {exc!r}") from None
        return cls(body["normalized"], chunks, skipped)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _strings(values: object) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise ValueError(f"expected a list of strings, got {type(values).__name__}")
    return tuple(_text(v) for v in values)
