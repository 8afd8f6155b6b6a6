"""A ``/v1/audio/speech`` body -> a validated ``SpeechRequest`` (daemon process, pure): OpenAI's fields mapped onto
this service's job, with ``RequestError`` naming the parameter at fault (``param`` in OpenAI's error shape)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from tts_ops.config import Config
from tts_ops.http.errors import RequestError
from tts_ops.http.openai.vocab import (
    EMOTION_WORDS,
    FIELDS,
    MODEL_ALIASES,
    OPENAI_SPEED_MAX,
    OPENAI_SPEED_MIN,
    PCM_SAMPLE_RATE,
    RESPONSE_FORMATS,
    STREAM_FORMATS,
    available_voices,
    engine_voices,
    is_model_alias,
)
from tts_ops.http.ssml import ssml_of
from tts_ops.http.validation import canonical_voice, engine_default_voice, parse_emotion
from tts_vocab import ENGINES, SynthesisJob
from tts_vocab import headers as h
from tts_vocab.errors import InvalidRequest
from tts_vocab.limits import SPEED_MAX, SPEED_MIN
from tts_vocab.ssml import Script

# --- instructions -> emotion -------------------------------------------------------------------------------------


def _emotion_pattern() -> re.Pattern[str]:
    groups = []
    for emotion, (english, chinese) in EMOTION_WORDS.items():
        words = [rf"\b(?:{stem})\b" for stem in english] + [re.escape(word) for word in chinese]
        groups.append(f"(?P<{emotion}>{'|'.join(words)})")
    return re.compile("|".join(groups), re.IGNORECASE)


_EMOTION_RE = _emotion_pattern()


def emotion_from_instructions(instructions: str | None) -> str:
    """The emotion named first in ``instructions`` ("speak happily", "悲伤地"); neutral when none is."""
    if not instructions:
        return "neutral"
    match = _EMOTION_RE.search(instructions)
    return match.lastgroup if match and match.lastgroup else "neutral"


# --- request parsing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechRequest:
    """A validated ``/v1/audio/speech`` body: the worker job plus what the response reports."""

    job: SynthesisJob
    model: str
    voice: str
    speed_requested: float
    stream_format: str

    @property
    def sse(self) -> bool:
        return self.stream_format == "sse"

    def headers(self) -> dict[str, str]:
        return {h.SPEED_APPLIED: f"{self.job.speed:g}", h.MODEL: self.model}


def clamp_speed(speed: float) -> float:
    """OpenAI's 0.25-4.0 range into what the engines do (0.5-2.0)."""
    return min(SPEED_MAX, max(SPEED_MIN, speed))


def resolve_voice(name: str, config: Config) -> str | None:
    """The engine voice id for a requested voice; None for the engine's default voice."""
    engine = config.workers.engine
    own = engine_voices(engine)
    if name in config.engines.voice_map:
        target = config.engines.voice_map[name]
    elif name in ("default", *own):
        target = name
    else:
        raise RequestError(400, f"Unknown voice {name!r}; available voices: {', '.join(available_voices(config))}",
                           param="voice", code="invalid_value")
    if target != "default" and target not in own:
        raise RequestError(400, f"Voice {name!r} maps to {target!r}, which engine {engine} does not have; "
                                f"available voices: {', '.join(available_voices(config))}",
                           param="voice", code="invalid_value")
    return canonical_voice(target, engine_default_voice(config))


def resolve_model(model: Any, config: Config) -> str:
    engine = config.workers.engine
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise RequestError(400, "Invalid type for 'model': expected a string.", param="model", code="invalid_type")
    if is_model_alias(model) or model == engine:
        return model
    if model in ENGINES:
        raise RequestError(400, f"Model {model!r} is not served here: this server runs {engine} (use {engine!r} "
                                f"or one of {', '.join(MODEL_ALIASES)}).", param="model", code="model_not_found")
    raise RequestError(400, f"Unknown model {model!r}; available models: {', '.join((*MODEL_ALIASES, engine))}.",
                       param="model", code="model_not_found")


def parse_speech(body: Any, config: Config) -> SpeechRequest:
    """Validate an OpenAI speech request against this server's config; RequestError names the parameter."""
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.", code="invalid_request_body")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RequestError(400, f"Unrecognized request argument supplied: {', '.join(unknown)}", param=unknown[0],
                           code="unknown_parameter")
    model = resolve_model(body.get("model"), config)
    text = _input(body.get("input"), config.server.max_input_chars)
    voice = _voice(body.get("voice"))
    engine_voice = resolve_voice(voice, config)
    fmt = _response_format(_optional(body, "response_format", "mp3"))
    speed = _speed(_optional(body, "speed", 1.0))
    emotion = _emotion(body.get("emotion"), _optional(body, "instructions", None))
    stream_format = _optional(body, "stream_format", "audio")
    if stream_format not in STREAM_FORMATS:
        raise RequestError(400, f"Invalid 'stream_format': {stream_format!r}; supported: audio, sse.",
                           param="stream_format", code="invalid_value")

    job = SynthesisJob(text=text, emotion=emotion, speed=clamp_speed(speed), voice=engine_voice, format=fmt,
                       sample_rate=PCM_SAMPLE_RATE if fmt == "pcm" else None, ssml=_ssml(text))
    return SpeechRequest(job, model, voice, speed, stream_format)


def _ssml(text: str) -> Script | None:
    """The parsed SSML when ``input`` starts with ``<speak>`` (tts_ops.http.ssml); bad SSML names ``input``."""
    try:
        return ssml_of(text, "input")
    except InvalidRequest as exc:
        raise RequestError(400, str(exc), param="input", code="invalid_ssml") from None


def _input(text: Any, limit: int) -> str:
    if text is None:
        raise _missing("input")
    if not isinstance(text, str):
        raise RequestError(400, "Invalid type for 'input': expected a string.", param="input", code="invalid_type")
    if not text.strip():
        raise RequestError(400, "Invalid 'input': empty string. Expected text to synthesize.", param="input",
                           code="empty_string")
    if len(text) > limit:
        raise RequestError(400, f"Invalid 'input': string too long. Expected a string with maximum length {limit}, "
                                f"but got a string with length {len(text)} instead.", param="input",
                           code="string_above_max_length")
    return text


def _voice(voice: Any) -> str:
    """The requested voice name: a string, or OpenAI's object form ``{"id": name}``."""
    if voice is None:
        raise _missing("voice")
    if isinstance(voice, dict) and set(voice) == {"id"}:
        voice = voice["id"]
    if not isinstance(voice, str) or not voice.strip():
        raise RequestError(400, "Invalid 'voice': expected a voice name or an object {\"id\": name}.",
                           param="voice", code="invalid_type")
    return voice


def _response_format(fmt: Any) -> str:
    if fmt not in RESPONSE_FORMATS:
        supported = ", ".join(RESPONSE_FORMATS)
        raise RequestError(400, f"Unsupported response_format {fmt!r}; supported formats: {supported}"
                                f"{' (aac is not available on this server)' if fmt == 'aac' else ''}.",
                           param="response_format", code="invalid_value")
    return str(fmt)


def _speed(speed: Any) -> float:
    """The requested speed (OpenAI's range, not yet clamped)."""
    number = None if isinstance(speed, bool) or not isinstance(speed, (int, float)) else _as_float(speed)
    if number is None or not math.isfinite(number):
        raise RequestError(400, "Invalid type for 'speed': expected a number.", param="speed", code="invalid_type")
    if not OPENAI_SPEED_MIN <= number <= OPENAI_SPEED_MAX:
        raise RequestError(400, f"Invalid 'speed': {number:g} is out of range; expected a number between "
                                f"{OPENAI_SPEED_MIN} and {OPENAI_SPEED_MAX}.", param="speed", code="invalid_value")
    return number


def _emotion(emotion: Any, instructions: Any) -> str:
    """The extension field ``emotion`` when given, else the first emotion word in ``instructions``."""
    if instructions is not None and not isinstance(instructions, str):
        raise RequestError(400, "Invalid type for 'instructions': expected a string.", param="instructions",
                           code="invalid_type")
    return parse_emotion(emotion) if emotion is not None else emotion_from_instructions(instructions)


def _as_float(value: int | float) -> float | None:
    """``float(value)``, or None for an integer too large for a float (JSON allows 400-digit numbers)."""
    try:
        return float(value)
    except OverflowError:
        return None


def _optional(body: dict[str, Any], name: str, default: Any) -> Any:
    value = body.get(name)
    return default if value is None else value


def _missing(name: str) -> RequestError:
    return RequestError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
