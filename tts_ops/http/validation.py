"""Validation of the public API's request bodies into worker jobs (daemon process, pure logic).

Every client mistake becomes a ``RequestError`` with the HTTP status and a message naming the field, so handlers
never answer 500 for bad input.

Voices are made canonical (``canonical_voice``): ``default`` and the engine's own default voice id (``baker`` for the
bundled engine, ``engines.sambert_hifigan.default_voice`` for Sambert) both become "no voice" in the job, so the
same audio has one cache key whichever endpoint or spelling asked for it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from inference.audio import normalize_format
from inference.engines.base import EMOTION_ALIASES, EMOTIONS, SPEED_MAX, SPEED_MIN
from inference.errors import TextError
from tts_ops.config import SAMBERT_VOICES
from tts_ops.http.errors import RequestError

#: Voices of each engine (inference/engines/*: not imported, they pull in the runtime).
ENGINE_VOICES: dict[str, tuple[str, ...]] = {"fastspeech2-baker": ("baker",), "sambert-hifigan": SAMBERT_VOICES}


def load_json(raw: bytes) -> Any:
    """A request body parsed as JSON; RequestError 400 for anything that is not (including nesting so deep that the
    parser gives up with RecursionError, which is not a ValueError)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise RequestError(400, "request body must be valid JSON: it is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise RequestError(400, "request body must be valid JSON") from None


def engine_default_voice(config: Any) -> str | None:
    """The voice id the configured engine uses when a job names none (None for an engine without voice ids)."""
    engine = config.workers.engine
    if engine == "sambert-hifigan":
        return config.engines.sambert_hifigan.default_voice
    own = ENGINE_VOICES.get(engine, ())
    return own[0] if own else None


def canonical_voice(voice: str, default_voice: str | None) -> str | None:
    """None (the job names no voice) for ``default`` and for the engine's default voice id; else ``voice``."""
    return None if voice in ("default", default_voice) else voice


def check_content_type(content_type: str) -> None:
    # Clients that send no Content-Type (curl --data-binary with -H missing) still get served; anything else
    # that is not JSON is a clear 415.
    if content_type not in ("application/json", "application/octet-stream", "") and not content_type.endswith("+json"):
        raise RequestError(415, f"Content-Type must be application/json, got {content_type}")


def parse_tts(body: Any, *, max_text_chars: int, default_voice: str | None = None) -> dict[str, Any]:
    """``POST /tts`` body -> worker job (``text``, ``emotion``, ``speed``, ``voice``, ``format``).
    ``default_voice``: ``engine_default_voice(config)``, so naming it gives the same job as naming none."""
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object")
    unknown = set(body) - {"text", "emotion", "speed", "voice", "format", "sample_rate", "stream"}
    if unknown:
        raise RequestError(400, f"unknown field(s): {', '.join(sorted(unknown))}", param=sorted(unknown)[0])
    text = body.get("text")
    if text is None:
        raise RequestError(400, "'text' is required", param="text")
    if not isinstance(text, str):
        raise RequestError(400, "'text' must be a string", param="text")
    if not text.strip():
        raise RequestError(400, "'text' must not be empty", param="text")
    if len(text) > max_text_chars:
        raise RequestError(413, f"'text' is {len(text)} characters; the limit is {max_text_chars}", param="text")
    job: dict[str, Any] = {"text": text, "emotion": parse_emotion(body.get("emotion", "neutral")),
                           "speed": parse_speed(body.get("speed", 1.0))}
    voice = body.get("voice")
    if voice is not None and (not isinstance(voice, str) or not voice.strip()):
        raise RequestError(400, "'voice' must be a non-empty string", param="voice")
    voice = canonical_voice(voice.strip(), default_voice) if voice else None
    if voice:
        job["voice"] = voice
    fmt = body.get("format")
    fmt = "wav" if fmt is None else fmt
    if not isinstance(fmt, str):
        raise RequestError(400, "'format' must be a string", param="format")
    try:
        job["format"] = normalize_format(fmt)
    except TextError as exc:
        raise RequestError(400, str(exc), param="format") from None
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RequestError(400, "'stream' must be true or false", param="stream")
    if stream:
        job["stream"] = True
    rate = body.get("sample_rate")
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)  # JSON Schema's integer includes 16000.0
    if rate is not None:
        if not isinstance(rate, int) or isinstance(rate, bool) or not 8000 <= rate <= 48000:
            raise RequestError(400, "'sample_rate' must be an integer between 8000 and 48000", param="sample_rate")
        job["sample_rate"] = rate
    return job


def parse_emotion(value: Any) -> str:
    if value is None:
        return "neutral"
    if not isinstance(value, str):
        raise RequestError(400, "'emotion' must be a string", param="emotion")
    name = EMOTION_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in EMOTIONS:
        raise RequestError(400, f"unknown emotion {value!r}; expected one of: {', '.join(EMOTIONS)}", param="emotion")
    return name


def parse_speed(value: Any) -> float:
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(400, f"'speed' must be a number between {SPEED_MIN} and {SPEED_MAX}", param="speed")
    number = as_float(value)
    if number is None or not math.isfinite(number) or not SPEED_MIN <= number <= SPEED_MAX:
        shown = value if number is not None else "a number too large"
        raise RequestError(400, f"'speed' must be between {SPEED_MIN} and {SPEED_MAX}, got {shown}", param="speed")
    return number


def as_float(value: int | float) -> float | None:
    """``float(value)``, or None for an integer too large for a float (JSON allows 400-digit numbers)."""
    try:
        return float(value)
    except OverflowError:
        return None
