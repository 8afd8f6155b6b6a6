"""The OpenAI-compatible paths (``/v1/*``) in the OpenAPI document (daemon process, pure), described from the
same vocabulary the request parser uses (``tts_ops.http.openai.vocab``)."""

from __future__ import annotations

from typing import Any

from tts_ops.config import Config
from tts_ops.http import ssml
from tts_ops.http.openai.vocab import (
    MODEL_ALIAS_PATTERN,
    MODEL_ALIASES,
    OPENAI_SPEED_MAX,
    OPENAI_SPEED_MIN,
    PCM_SAMPLE_RATE,
    RESPONSE_FORMATS,
    STREAM_FORMATS,
    available_voices,
)
from tts_ops.http.openapi.common import (
    EMOTION_SPELLINGS,
    INT,
    STR,
    audio_content,
    audio_headers,
    errors,
    json_content,
    ok,
    public_security,
    schema_ref,
)
from tts_ops.service.chunk_pipeline import MAX_STREAM_PARALLELISM


def model_id(config: Config) -> dict[str, Any]:
    """A model id: one listed by /v1/models, or a snapshot id not in the list (gpt-4o-mini-tts-2025-03-20, ...),
    which is accepted too: the pattern says which."""
    return {"type": "string", "anyOf": [{"enum": [*MODEL_ALIASES, config.workers.engine]},
                                        {"pattern": MODEL_ALIAS_PATTERN}]}


def schemas(config: Config) -> dict[str, Any]:
    return {
        "SpeechRequest": speech_request(config),
        "SpeechAudioDeltaEvent": {
            "type": "object", "required": ["type", "audio"],
            "properties": {"type": {"const": "speech.audio.delta"},
                           "audio": {"type": "string", "contentEncoding": "base64"}}},
        "SpeechAudioDoneEvent": {
            "type": "object", "required": ["type", "usage"],
            "properties": {"type": {"const": "speech.audio.done"},
                           "usage": {"type": "object", "required": ["input_tokens", "output_tokens", "total_tokens"],
                                     "properties": {"input_tokens": {"type": "integer",
                                                                     "description": "Input characters."},
                                                    "output_tokens": {"type": "integer",
                                                                      "description": "20 ms audio frames."},
                                                    "total_tokens": INT}}}},
        "Model": {
            "type": "object", "required": ["id", "object", "created", "owned_by"],
            "properties": {"id": model_id(config), "object": {"const": "model"},
                           "created": INT, "owned_by": {"const": "tts-ops"},
                           "engine": {"type": "string", "description": "Extension: the engine behind the model."},
                           "voices": {"type": "array", "items": STR, "description": "Extension: accepted voices."}}},
        "ModelList": {
            "type": "object", "required": ["object", "data"],
            "properties": {"object": {"const": "list"},
                           "data": {"type": "array", "items": schema_ref("Model")},
                           "voices": {"type": "array", "items": STR,
                                      "description": "Extension: voices accepted by /v1/audio/speech."}}},
    }


def speech_request(config: Config) -> dict[str, Any]:
    engine, limit, voices = config.workers.engine, config.server.max_input_chars, available_voices(config)
    return {
        "type": "object", "required": ["model", "input", "voice"], "additionalProperties": False,
        "properties": {
            "model": {**model_id(config),
                      "description": f"OpenAI model names (tts-1, tts-1-hd, gpt-4o-mini-tts and their snapshots "
                                     f"such as gpt-4o-mini-tts-2025-03-20) are aliases of the configured engine "
                                     f"({engine}); another engine id -> 400."},
            "input": {"type": "string", "minLength": 1, "maxLength": limit, "pattern": r"\S",
                      "description": f"Text to speak, at most server.max_input_chars ({limit}) characters (longer "
                                     f"-> 400, code string_above_max_length). Text with nothing speakable -> 400. "
                                     f"{ssml.DESCRIPTION} Bad SSML -> 400, code invalid_ssml.",
                      "examples": ["今天天气真好。", ssml.EXAMPLE]},
            "voice": {"oneOf": [
                {"type": "string", "enum": voices},
                {"type": "object", "required": ["id"], "additionalProperties": False,
                 "properties": {"id": {"type": "string", "enum": voices}}}],
                "description": "OpenAI voice names map through engines.voice_map; the engine's own voice ids and "
                               "'default' work too."},
            "instructions": {"type": ["string", "null"],
                             "description": "Free text. An emotion word selects the emotion (the first one found): "
                                            "happy/cheerful/joyful/开心/高兴/快乐/愉快, "
                                            "sad/unhappy/悲伤/难过/伤心/不开心, angry/anger/生气/愤怒, "
                                            "fear/scared/afraid/害怕/恐惧, surprise(d)/惊讶/吃惊, "
                                            "disgust(ed)/厌恶/恶心, neutral/calm/平静; English words match whole "
                                            "words with their usual endings (happily, sadly). None -> neutral."},
            "response_format": {"type": ["string", "null"], "enum": [*RESPONSE_FORMATS, None], "default": "mp3",
                                "description": f"mp3 (CBR 48 kbit/s when streamed), opus (Ogg), flac, wav, pcm "
                                               f"(s16le mono, {PCM_SAMPLE_RATE} Hz). aac is not supported (400)."},
            "speed": {"type": ["number", "null"], "minimum": OPENAI_SPEED_MIN, "maximum": OPENAI_SPEED_MAX,
                      "default": 1.0,
                      "description": "Accepted from 0.25 to 4.0 like OpenAI; the engines support 0.5-2.0, so the "
                                     "value is clamped into that range and the speed used is returned in "
                                     "X-Speed-Applied."},
            "stream_format": {"type": ["string", "null"], "enum": [*STREAM_FORMATS, None], "default": "audio",
                              "description": "audio: the file, streamed with chunked transfer encoding; sse: "
                                             "Server-Sent Events speech.audio.delta (base64 audio, the same bytes "
                                             "in order) then speech.audio.done."},
            "emotion": {"type": ["string", "null"], "enum": [*EMOTION_SPELLINGS, None],
                        "description": "Extension: the emotion, overriding instructions."},
        }}


def speech_200() -> dict[str, Any]:
    return {
        "description": "The audio, always streamed with chunked transfer encoding as chunks are synthesized (in "
                       f"parallel on up to {MAX_STREAM_PARALLELISM} workers; flac is sent once complete), or the "
                       "Server-Sent Events stream for stream_format=sse. A cache HIT is sent at once.",
        "headers": audio_headers(openai=True),
        "content": {**audio_content(),
                    # Per event (OpenAPI 3.1: ``schema`` of an event stream describes one event; 3.2 calls it
                    # itemSchema): the SSE fields, with the JSON payload in ``data``.
                    "text/event-stream": {"schema": {
                        "type": "object", "required": ["event", "data"],
                        "properties": {
                            "event": {"type": "string", "enum": ["speech.audio.delta", "speech.audio.done"]},
                            "data": {"type": "string", "contentMediaType": "application/json",
                                     "contentSchema": {"oneOf": [schema_ref("SpeechAudioDeltaEvent"),
                                                                 schema_ref("SpeechAudioDoneEvent")]}}}}}}}


def paths(config: Config) -> dict[str, Any]:
    security = public_security(config)
    texts = {
        400: "Invalid request: a body that is not JSON (malformed, or nested too deeply to parse), or a field the "
             "message names (``param``), including ``input`` longer than ``server.max_input_chars`` characters "
             f"({config.server.max_input_chars}; code string_above_max_length). Also input that the schema "
             "accepts but that has nothing speakable (emoji or punctuation only, for example), and a "
             "voice the engine does not have.",
    }
    return {
        "/v1/audio/speech": {"post": {
            "operationId": "createSpeech", "summary": "OpenAI-compatible speech", "tags": ["openai"],
            "security": security,
            "requestBody": {"required": True, "content": json_content(schema_ref("SpeechRequest"))},
            "responses": {"200": speech_200(),
                          **errors("OpenAIError", 400, 401, 413, 415, 500, 502, 503, 504, texts=texts)}}},
        "/v1/models": {"get": {
            "operationId": "listModels", "summary": "Models (aliases of the engine) and voices", "tags": ["openai"],
            "security": security,
            "responses": {"200": ok("The models.", schema_ref("ModelList")), **errors("OpenAIError", 401)}}},
        "/v1/models/{model}": {"get": {
            "operationId": "retrieveModel", "summary": "One model", "tags": ["openai"],
            "security": security,
            "parameters": [{"name": "model", "in": "path", "required": True, "schema": STR}],
            "responses": {"200": ok("The model.", schema_ref("Model")), **errors("OpenAIError", 401, 404)}}},
    }
