"""OpenAI's side of the vocabulary (daemon process, pure): the names and ranges the ``/v1`` API accepts, shared by
the request parser (``parsing``) and the OpenAPI document (``tts_ops.http.openapi``), so neither imports the other.

Audio formats themselves are ``tts_vocab.formats``; this module only says which of them OpenAI's
``response_format`` offers.
"""

from __future__ import annotations

import re

from tts_ops.config import Config
from tts_vocab import ENGINES

#: The OpenAI model ids /v1/models lists: the three families, then their published snapshots.
MODEL_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "tts-1-1106", "tts-1-hd-1106", "gpt-4o-mini-tts-2025-03-20",
                 "gpt-4o-mini-tts-2025-12-15")
#: Every id accepted as an alias: a family plus any snapshot suffixes, so snapshots OpenAI publishes later work too.
#: Also the OpenAPI ``pattern`` (ECMA-262, where ``$`` is the end); Python's ``$`` would accept a trailing newline.
MODEL_ALIAS_PATTERN = r"^(?:tts-1|gpt-4o-mini-tts)(?:-[a-z0-9]+)*$"
_MODEL_ALIAS_RE = re.compile(MODEL_ALIAS_PATTERN[:-1] + r"\Z")
#: OpenAI's response_format names that this server produces, in OpenAI's order (mp3 is the default). The names are
#: ours too (tts_vocab.formats); OpenAI's aac is not among them.
RESPONSE_FORMATS = ("mp3", "opus", "flac", "wav", "pcm")
STREAM_FORMATS = ("audio", "sse")
OPENAI_SPEED_MIN, OPENAI_SPEED_MAX = 0.25, 4.0
#: OpenAI's pcm is 24 kHz; the bundled voice is 24 kHz already, Sambert (16 kHz) is resampled for pcm.
PCM_SAMPLE_RATE = 24000
#: ``created`` of the models listed by /v1/models (2025-01-01T00:00:00Z): a fixed date, not the start time, so
#: clients caching the list see no change across restarts.
MODELS_CREATED = 1735689600
#: The fields of a /v1/audio/speech body: OpenAI's, then the extension ``emotion``.
FIELDS = ("model", "input", "voice", "instructions", "response_format", "speed", "stream_format", "emotion")
#: The service's field names that OpenAI's request spells otherwise, for the ``param`` of a /v1 error the service
#: raises (its job's ``text`` is OpenAI's ``input``: "nothing speakable" names ``input`` on /v1).
SERVICE_PARAMS = {"text": "input"}

# English entries are word stems matched at word boundaries (so "unhappy" is not "happy"), Chinese ones as
# substrings. The emotion whose word appears FIRST in the instructions wins; negations ("not happy", "不开心") are
# listed as sad and win over the word they contain because they start earlier.
EMOTION_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sad": ((r"sad(?:ly|ness|der|dest)?", r"unhapp(?:y|ily|iness)", r"not\s+(?:happy|cheerful|joyful)"),
            ("悲伤", "难过", "伤心", "不开心", "不高兴", "不快乐", "不愉快")),
    "happy": ((r"happ(?:y|ily|ier|iest|iness)", r"cheer(?:ful|fully|fulness|y|ily)?",
               r"joy(?:ful|fully|fulness|ous|ously)?"),
              ("开心", "高兴", "快乐", "愉快")),
    "angry": ((r"angr(?:y|ily|ier|iest)", r"anger(?:ed)?"), ("生气", "愤怒")),
    "fear": ((r"fear(?:ful|fully|s)?", r"scared", r"afraid"), ("害怕", "恐惧")),
    "surprise": ((r"surpris(?:e|ed|es|ing|ingly)",), ("惊讶", "吃惊")),
    "disgust": ((r"disgust(?:ed|ing|ingly)?",), ("厌恶", "恶心")),
    "neutral": ((r"neutral(?:ly)?", r"calm(?:ly|ness|er)?"), ("平静",)),
}


def is_model_alias(model: str) -> bool:
    """``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts`` and their snapshots (``gpt-4o-mini-tts-2025-03-20``)."""
    return _MODEL_ALIAS_RE.match(model) is not None


def engine_voices(engine_id: str) -> tuple[str, ...]:
    """The voice ids of ``engine_id`` (none for an unknown engine)."""
    descriptor = ENGINES.get(engine_id)
    return descriptor.voices if descriptor else ()


def available_voices(config: Config) -> list[str]:
    """Voice names this server accepts for the configured engine: mapped OpenAI names, then the engine's ids."""
    own = engine_voices(config.workers.engine)
    mapped = [name for name, target in config.engines.voice_map.items() if target == "default" or target in own]
    return mapped + [voice for voice in ("default", *own) if voice not in mapped]
