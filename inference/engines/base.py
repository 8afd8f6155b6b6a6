"""Engine contract shared by every TTS engine, and the request parameters they accept.

Runs in the worker process (and in-process for ``tts-ops synth``). An engine turns one chunk of text into float32
samples; splitting long text, joining chunks with pauses and guarding the output happen here once, so every engine
gets them for free.
"""

from __future__ import annotations

import abc
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from inference.audio import check_output, silence
from inference.errors import TextError
from inference.text.alignment import Timeline, words
from tts_vocab.emotions import EMOTION_ALIASES, EMOTIONS
from tts_vocab.emotions import normalize_emotion as _normalize_emotion
from tts_vocab.errors import InvalidRequest
from tts_vocab.limits import SPEED_MAX, SPEED_MIN
from tts_vocab.messages import FrontendView
from tts_vocab.ssml import Say
from tts_vocab.timings import Timings

log = logging.getLogger("tts_ops.engine")

__all__ = ["EMOTIONS", "EMOTION_ALIASES", "SPEED_MIN", "SPEED_MAX", "normalize_emotion", "check_speed",
           "SynthesisParams", "EngineInfo", "Engine"]


def normalize_emotion(emotion: str | None) -> str:
    """Canonical emotion (the shared vocabulary's spellings), or TextError naming the accepted ones."""
    try:
        return _normalize_emotion(emotion)
    except InvalidRequest as exc:
        raise TextError(str(exc), exc.field) from None


def check_speed(speed: float) -> float:
    """Validated speed factor (1.0 = normal, 2.0 = twice as fast)."""
    try:
        value = float(speed)
    except (TypeError, ValueError):
        raise TextError(f"speed must be a number between {SPEED_MIN} and {SPEED_MAX}, got {speed!r}") from None
    if not math.isfinite(value) or not SPEED_MIN <= value <= SPEED_MAX:
        raise TextError(f"speed must be between {SPEED_MIN} and {SPEED_MAX}, got {speed!r}")
    return value


@dataclass(frozen=True)
class SynthesisParams:
    """What a client may choose besides the text."""

    emotion: str = "neutral"
    speed: float = 1.0
    voice: str | None = None

    @classmethod
    def build(cls, emotion: str | None = None, speed: float | None = 1.0, voice: str | None = None) -> SynthesisParams:
        if voice is not None and not isinstance(voice, str):
            raise TextError(f"voice must be a string, got {type(voice).__name__}")
        return cls(normalize_emotion(emotion), check_speed(1.0 if speed is None else speed), voice or None)


@dataclass(frozen=True)
class EngineInfo:
    """Identity of a loaded engine, reported by /health and used in cache keys."""

    id: str
    model_version: str
    sample_rate: int
    voices: tuple[str, ...]
    default_voice: str


# The short text is what a forked worker's light warm-up renders, on the clock of a crash replacement: it must take
# one model call. "好。" does (5 ids, 29 mel frames, 0.06 s CPU); "你好。", the text before, took four, because the
# truncation guard takes its 8-id ending for a cut one and re-renders it in pieces (0.22 s CPU, measured 2026-12-07),
# and left the vocoder's buffers sized for 62 frames instead of 29 (~20 MiB more in every idle worker).
WARM_UP_TEXTS = ("好。", "今天天气真好，适合出去散步。")

class Engine(abc.ABC):
    """A loaded TTS model. Not thread-safe: callers serialise synthesis (the worker runs one at a time)."""

    id: str = ""
    #: silence inserted between chunks of a long text
    pause_s: float = 0.25
    #: chunks the model handles well; longer sentences are split at clauses
    max_chunk_chars: int = 60

    @abc.abstractmethod
    def load(self) -> None:
        """Load weights; raise BootError with an actionable message when something is missing."""

    def preload(self) -> None:  # noqa: B027 - a default that does nothing, not an abstract method
        """The part of ``load`` that forked workers can share (read model files, build tables), run once in the
        zygote before it forks: no threads, no runtime sessions. ``load`` must still work without it."""

    @abc.abstractmethod
    def info(self) -> EngineInfo:
        """Identity of the loaded model."""

    @abc.abstractmethod
    def split(self, text: str) -> list[str]:
        """Split text into the chunks this engine synthesises one at a time (TextError if nothing speakable)."""

    @abc.abstractmethod
    def synthesize_chunk(self, text: str, params: SynthesisParams) -> np.ndarray:
        """Float32 mono samples at ``info().sample_rate`` for one chunk."""

    def take_skipped(self) -> tuple[str, ...]:
        """The characters the voice could not read since the last call (the worker reports them with the audio
        so that ``synthesis.log`` names them); engines whose frontend does not report any return ()."""
        return ()

    def phonemize(self, text: str) -> FrontendView:
        """What the model would be given for ``text`` (``POST /frontend``, ``tts-ops frontend``). Engines whose
        frontend is not ours (Sambert's ttsfrd) have no such view: TextError, a 400 naming the engine."""
        raise TextError(f"engine {self.id} has no phonemizer view (its text frontend is not tts-ops' own)")

    def resolve_voice(self, voice: str | None) -> str:
        """The engine's voice id for a requested voice; TextError for voices this engine does not have."""
        info = self.info()
        if voice in (None, "", "default"):
            return info.default_voice
        if voice not in info.voices:
            raise TextError(f"unknown voice {voice!r} for engine {info.id}; available: {', '.join(info.voices)}")
        return voice

    def warm_up(self, light: bool = False) -> float:
        """Run inference once on a short and a medium text so the first client does not pay for lazy init.
        ``light``: the short text only, which initialises the runtime (delegate set-up, first allocation); a
        worker forked from the zygote uses it to be ready in a fraction of a second."""
        start = time.monotonic()
        for text in WARM_UP_TEXTS[:1] if light else WARM_UP_TEXTS:
            self.synthesize_chunk(text, SynthesisParams())
        return time.monotonic() - start

    def iter_synthesize(self, text: str, params: SynthesisParams) -> Iterator[np.ndarray]:
        """Yield each chunk's samples, followed by the inter-chunk pause (none after the last one)."""
        chunks = self.split(text)
        rate = self.info().sample_rate
        for index, chunk in enumerate(chunks):
            samples = self.synthesize_chunk(chunk, params)
            check_output(samples, rate)
            if index < len(chunks) - 1:
                samples = np.concatenate([samples, silence(self.pause_s, rate)])
            yield samples

    def synthesize(self, text: str, params: SynthesisParams) -> np.ndarray:
        """The whole text as one float32 array."""
        return np.concatenate(list(self.iter_synthesize(text, params)))

    def synthesize_run(self, run: Sequence[Say], params: SynthesisParams,
                       timeline: Timeline | None = None) -> np.ndarray:
        """One run of an SSML script (``inference.engines.script``): spoken segments sharing ``params.emotion``,
        added to ``timeline`` when one is given (``synthesize_onto``). Engines that can force a reading override
        this; by default a run with a ``<phoneme>`` is a TextError."""
        forced = [segment.text for segment in run if segment.pinyin]
        if forced:
            raise TextError(f"engine {self.id} cannot force a reading (SSML <phoneme>): {', '.join(forced)}")
        return self.synthesize_whole("".join(segment.text for segment in run), params, timeline)

    def synthesize_whole(self, text: str, params: SynthesisParams, timeline: Timeline | None) -> np.ndarray:
        """``synthesize``, or ``synthesize_onto`` when there is a ``timeline`` to add the audio to."""
        return self.synthesize(text, params) if timeline is None else self.synthesize_onto(text, params, timeline)

    def synthesize_chunk_timed(self, text: str, params: SynthesisParams, timeline: Timeline) -> np.ndarray:
        """``synthesize_chunk`` that also adds the chunk's pieces to ``timeline``. Engines whose pipeline does not
        expose per-symbol durations (Sambert's does not) refuse: TextError, a 400 naming ``timestamps``."""
        raise TextError(f"engine {self.id} does not report timestamps (its pipeline exposes no durations)",
                        "timestamps")

    def synthesize_timed(self, text: str, params: SynthesisParams) -> tuple[np.ndarray, Timings]:
        """The whole text as one array, with per-character and per-word times that add up to its length."""
        timeline = Timeline(text, self.info().sample_rate)
        audio = self.synthesize_onto(text, params, timeline)
        chars = timeline.timings()
        return audio, Timings(chars, words(chars))

    def synthesize_onto(self, text: str, params: SynthesisParams, timeline: Timeline) -> np.ndarray:
        """``synthesize`` with its chunks and pauses added to ``timeline``, which may already hold audio (a
        script's earlier runs and breaks) and whose text holds ``text`` after what it has placed."""
        chunks = self.split(text)
        rate = self.info().sample_rate
        parts = []
        for index, chunk in enumerate(chunks):
            samples = self.synthesize_chunk_timed(chunk, params, timeline)
            check_output(samples, rate)
            parts.append(samples)
            if index < len(chunks) - 1:
                parts.append(silence(self.pause_s, rate))
                timeline.silence(len(parts[-1]))
        return np.concatenate(parts)

    def close(self) -> None:  # noqa: B027 - a default that does nothing, not an abstract method
        """Release model memory; engines with nothing to release need not override."""
