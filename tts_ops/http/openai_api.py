"""OpenAI-compatible speech API on the public listener (daemon process, event loop): ``POST /v1/audio/speech``,
``GET /v1/models``, ``GET /v1/models/{model}``, plus bearer-key authentication of ``/v1/*`` and ``/tts`` and the
OpenAPI document at ``GET /openapi.json``. Wired in by ``FrontEnd.build_app``::

    from tts_ops.http import openai_api
    openai_api.register(app, frontend)

Clients use the official SDKs unchanged (``OpenAI(base_url="http://host:5000/v1", api_key=...)``). Mapping onto
this service:

- ``model``: ``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts`` and their snapshots (any id that is one of these
  families followed by ``-`` and a suffix, such as ``tts-1-1106``, ``tts-1-hd-1106`` or
  ``gpt-4o-mini-tts-2025-03-20``: OpenAI adds dated snapshots over time and SDK users pin them) are aliases of the
  configured engine; an engine id is accepted when it is the configured one (else 400 naming it).
- ``voice``: OpenAI names through ``engines.voice_map``, or the engine's own voice ids and ``default`` (the
  engine's default voice and ``default`` are one voice, with one cache key: ``validation.canonical_voice``).
- ``speed``: OpenAI's 0.25-4.0 is accepted; the engines do 0.5-2.0, so the value is clamped into that range and
  the speed used is reported in ``X-Speed-Applied``.
- ``instructions``: emotion words (English or Chinese) select the emotion; the extension field ``emotion`` wins.
- ``response_format``: mp3 (default), opus (Ogg), flac, wav, pcm (s16le mono at 24 kHz, ``X-Sample-Rate``); aac
  is not supported (400).
- ``stream_format``: ``audio`` (default) streams the file with chunked encoding; ``sse`` sends
  ``speech.audio.delta`` events (base64 audio) then ``speech.audio.done`` with usage.

Errors have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` on every ``/v1`` path, including
the router's 404/405 and the body-size 413.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import web

from tts_ops.http.errors import HttpError, RequestError
from tts_ops.http.validation import canonical_voice, check_content_type, engine_default_voice, load_json, parse_emotion
from tts_vocab import ENGINES, SynthesisJob
from tts_vocab import headers as h
from tts_vocab.limits import SPEED_MAX, SPEED_MIN

log = logging.getLogger("tts_ops.openai")

#: The OpenAI model ids /v1/models lists: the three families, then their published snapshots.
MODEL_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "tts-1-1106", "tts-1-hd-1106", "gpt-4o-mini-tts-2025-03-20",
                 "gpt-4o-mini-tts-2025-12-15")
#: Every id accepted as an alias: a family plus any snapshot suffixes, so snapshots OpenAI publishes later work too.
#: Also the OpenAPI ``pattern`` (ECMA-262, where ``$`` is the end); Python's ``$`` would accept a trailing newline.
MODEL_ALIAS_PATTERN = r"^(?:tts-1|gpt-4o-mini-tts)(?:-[a-z0-9]+)*$"
_MODEL_ALIAS_RE = re.compile(MODEL_ALIAS_PATTERN[:-1] + r"\Z")
#: OpenAI's response_format names that this server produces (the names are ours too: tts_vocab.formats).
RESPONSE_FORMATS = ("mp3", "opus", "flac", "wav", "pcm")
STREAM_FORMATS = ("audio", "sse")
OPENAI_SPEED_MIN, OPENAI_SPEED_MAX = 0.25, 4.0
#: OpenAI's pcm is 24 kHz; the bundled voice is 24 kHz already, Sambert (16 kHz) is resampled for pcm.
PCM_SAMPLE_RATE = 24000
#: ``created`` of the models listed by /v1/models (2025-01-01T00:00:00Z): a fixed date, not the start time, so
#: clients caching the list see no change across restarts.
MODELS_CREATED = 1735689600
FIELDS = ("model", "input", "voice", "instructions", "response_format", "speed", "stream_format", "emotion")
PROTECTED_PREFIX = "/v1/"

# --- instructions -> emotion -------------------------------------------------------------------------------------

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


def available_voices(config: Any) -> list[str]:
    """Voice names this server accepts for the configured engine: mapped OpenAI names, then the engine's ids."""
    own = _engine_voices(config.workers.engine)
    mapped = [name for name, target in config.engines.voice_map.items() if target == "default" or target in own]
    return mapped + [voice for voice in ("default", *own) if voice not in mapped]


def resolve_voice(name: str, config: Any) -> str | None:
    """The engine voice id for a requested voice; None for the engine's default voice."""
    engine = config.workers.engine
    own = _engine_voices(engine)
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


def _engine_voices(engine_id: str) -> tuple[str, ...]:
    descriptor = ENGINES.get(engine_id)
    return descriptor.voices if descriptor else ()


def is_model_alias(model: str) -> bool:
    """``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts`` and their snapshots (``gpt-4o-mini-tts-2025-03-20``)."""
    return _MODEL_ALIAS_RE.match(model) is not None


def resolve_model(model: Any, config: Any) -> str:
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


def parse_speech(body: Any, config: Any) -> SpeechRequest:
    """Validate an OpenAI speech request against this server's config; RequestError names the parameter."""
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.", code="invalid_request_body")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RequestError(400, f"Unrecognized request argument supplied: {', '.join(unknown)}", param=unknown[0],
                           code="unknown_parameter")
    model = resolve_model(body.get("model"), config)

    text = body.get("input")
    if text is None:
        raise _missing("input")
    if not isinstance(text, str):
        raise RequestError(400, "Invalid type for 'input': expected a string.", param="input", code="invalid_type")
    if not text.strip():
        raise RequestError(400, "Invalid 'input': empty string. Expected text to synthesize.", param="input",
                           code="empty_string")
    limit = config.server.max_input_chars
    if len(text) > limit:
        raise RequestError(400, f"Invalid 'input': string too long. Expected a string with maximum length {limit}, "
                                f"but got a string with length {len(text)} instead.", param="input",
                           code="string_above_max_length")

    voice = body.get("voice")
    if voice is None:
        raise _missing("voice")
    if isinstance(voice, dict) and set(voice) == {"id"}:
        voice = voice["id"]
    if not isinstance(voice, str) or not voice.strip():
        raise RequestError(400, "Invalid 'voice': expected a voice name or an object {\"id\": name}.",
                           param="voice", code="invalid_type")
    engine_voice = resolve_voice(voice, config)

    fmt = _optional(body, "response_format", "mp3")
    if fmt not in RESPONSE_FORMATS:
        supported = ", ".join(RESPONSE_FORMATS)
        raise RequestError(400, f"Unsupported response_format {fmt!r}; supported formats: {supported}"
                                f"{' (aac is not available on this server)' if fmt == 'aac' else ''}.",
                           param="response_format", code="invalid_value")

    speed = _optional(body, "speed", 1.0)
    number = None if isinstance(speed, bool) or not isinstance(speed, (int, float)) else _as_float(speed)
    if number is None or not math.isfinite(number):
        raise RequestError(400, "Invalid type for 'speed': expected a number.", param="speed", code="invalid_type")
    speed = number
    if not OPENAI_SPEED_MIN <= speed <= OPENAI_SPEED_MAX:
        raise RequestError(400, f"Invalid 'speed': {speed:g} is out of range; expected a number between "
                                f"{OPENAI_SPEED_MIN} and {OPENAI_SPEED_MAX}.", param="speed", code="invalid_value")

    instructions = _optional(body, "instructions", None)
    if instructions is not None and not isinstance(instructions, str):
        raise RequestError(400, "Invalid type for 'instructions': expected a string.", param="instructions",
                           code="invalid_type")
    emotion = body.get("emotion")
    emotion = parse_emotion(emotion) if emotion is not None else emotion_from_instructions(instructions)

    stream_format = _optional(body, "stream_format", "audio")
    if stream_format not in STREAM_FORMATS:
        raise RequestError(400, f"Invalid 'stream_format': {stream_format!r}; supported: audio, sse.",
                           param="stream_format", code="invalid_value")

    job = SynthesisJob(text=text, emotion=emotion, speed=clamp_speed(float(speed)), voice=engine_voice, format=fmt,
                       sample_rate=PCM_SAMPLE_RATE if fmt == "pcm" else None)
    return SpeechRequest(job, model, voice, float(speed), stream_format)


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


# --- responses ---------------------------------------------------------------------------------------------------


def openai_error(status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> web.Response:
    """An error in OpenAI's shape; 5xx are ``server_error``, everything else ``invalid_request_error``."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def model_entries(config: Any) -> list[dict[str, Any]]:
    return [model_entry(model, config) for model in (*MODEL_ALIASES, config.workers.engine)]


def model_entry(model: str, config: Any) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": MODELS_CREATED, "owned_by": "tts-ops",
            "engine": config.workers.engine, "voices": available_voices(config)}


class OpenAIApi:
    def __init__(self, frontend: Any) -> None:
        self.frontend = frontend

    async def handle_speech(self, request: web.Request) -> web.StreamResponse:
        from tts_ops.http.streaming import stream_job

        frontend = self.frontend
        frontend.totals["requests"] += 1
        try:
            frontend.admit()
            check_content_type(request.content_type)
            speech = parse_speech(load_json(await request.read()), frontend.config)
            return await stream_job(frontend, request, speech.job, sse=speech.sse, headers=speech.headers())
        except HttpError as exc:
            if exc.is_client_error:
                frontend.totals["client_errors"] += 1
            return openai_error(exc.status, str(exc), param=exc.param, code=exc.code, headers=exc.headers)

    async def handle_models(self, request: web.Request) -> web.Response:
        config = self.frontend.config
        return web.json_response({"object": "list", "data": model_entries(config),
                                  "voices": available_voices(config)})

    async def handle_model(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        config = self.frontend.config
        if is_model_alias(name) or name == config.workers.engine:
            return web.json_response(model_entry(name, config))
        return openai_error(404, f"The model {name!r} does not exist.", param="model", code="model_not_found")


# --- middleware: API keys and OpenAI-shaped errors on /v1 -----------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def key_matches(given: str, keys: tuple[str, ...]) -> bool:
    """Constant-time check of ``given`` against every configured key (no early exit on a match)."""
    given_bytes = given.encode("utf-8", "surrogateescape")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given_bytes, key.encode("utf-8", "surrogateescape"))
    return matched


def is_protected(path: str) -> bool:
    return path == "/tts" or path == "/v1" or path.startswith(PROTECTED_PREFIX)


def make_middleware(frontend: Any) -> Callable:
    @web.middleware
    async def openai_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        openai_shape = path == "/v1" or path.startswith(PROTECTED_PREFIX)
        keys = tuple(frontend.config.server.api_keys)  # read per request: SIGHUP may change the keys
        if keys and is_protected(path):
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                return _unauthorized(openai_shape, "You didn't provide an API key. Provide it in an Authorization "
                                                   "header using Bearer auth (Authorization: Bearer YOUR_KEY).", None)
            if not key_matches(given.strip(), keys):
                return _unauthorized(openai_shape, "Incorrect API key provided.", "invalid_api_key")
        if not openai_shape:
            return await handler(request)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if exc.status == 413:
                message = f"Request body too large (limit {frontend.config.server.max_body_bytes} bytes)."
            elif exc.status == 404:
                message = f"Invalid URL ({request.method} {path})"
            elif exc.status == 405:
                message = f"Method {request.method} is not allowed for {path}."
            else:
                message = exc.reason
            headers = {key: exc.headers[key] for key in ("Allow", h.RETRY_AFTER) if key in exc.headers}
            return openai_error(exc.status, message, headers=headers)
        except HttpError as exc:
            return openai_error(exc.status, str(exc), param=exc.param, code=exc.code, headers=exc.headers)
        except Exception:
            request_id = request.get("request_id", "-")
            log.exception("unhandled error in %s %s [request=%s]", request.method, path, request_id)
            return openai_error(500, "Internal error; see the server log for request " + request_id)

    return openai_middleware


def _unauthorized(openai_shape: bool, message: str, code: str | None) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="tts-ops"'}
    if openai_shape:
        return openai_error(401, message, code=code, headers=headers)
    return web.json_response({"error": message}, status=401, headers=headers)


# --- wiring --------------------------------------------------------------------------------------------------------


def register(app: web.Application, frontend: Any) -> None:
    """Add the /v1 routes, /openapi.json and the key/error middleware to the public app (before it starts)."""
    from tts_ops.http import openapi

    api = OpenAIApi(frontend)
    app.middlewares.append(make_middleware(frontend))
    app.router.add_post("/v1/audio/speech", api.handle_speech)
    app.router.add_get("/v1/models", api.handle_models)
    app.router.add_get("/v1/models/{model}", api.handle_model)
    app.router.add_get("/openapi.json", openapi.make_handler(frontend))
