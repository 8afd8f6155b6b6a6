"""The public listener's own paths in the OpenAPI document (daemon process, pure): the reference API ``POST /tts``,
health and readiness, the Web UI, saved outputs, the document itself and its Swagger UI (``/docs``)."""

from __future__ import annotations

from typing import Any

from tts_ops.config import Config
from tts_ops.http import ssml
from tts_ops.http.docs import ASSETS, DOCS_PATH
from tts_ops.http.openai.vocab import available_voices
from tts_ops.http.openapi.common import (
    BINARY,
    BOOL,
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
from tts_vocab.formats import FORMAT_SPELLINGS, FORMATS
from tts_vocab.limits import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SPEED_MAX, SPEED_MIN
from tts_vocab.timings import CAPTION_FORMATS


def schemas(config: Config) -> dict[str, Any]:
    return {
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"type": "string", "enum": ["healthy", "unhealthy"]}}},
        "Ready": {
            "type": "object", "required": ["ready", "accepting", "draining", "workers", "queue_depth", "in_flight",
                                         "limits"],
            "properties": {
                "ready": BOOL, "accepting": BOOL, "draining": BOOL,
                "workers": {"type": "object", "required": ["ready", "total", "target", "by_state"],
                            "properties": {"ready": INT, "total": INT, "target": INT,
                                           "by_state": {"type": "object", "additionalProperties": INT}}},
                "queue_depth": INT, "in_flight": INT,
                "limits": {"type": "object", "required": ["max_text_chars"],
                           "description": "Request limits the Web UI shows (server.max_text_chars).",
                           "properties": {"max_text_chars": INT}}}},
        "Summary": summary_schema(),
        "TtsRequest": tts_request(config),
        **timed_schemas(),
        "FrontendRequest": {
            "type": "object", "required": ["text"], "additionalProperties": False,
            "properties": {"text": {"type": "string", "minLength": 1, "maxLength": config.server.max_text_chars,
                                    "pattern": r"\S", "description": "Text to look at, as for /tts."}}},
        "FrontendView": {
            "type": "object", "required": ["normalized", "chunks"], "additionalProperties": False,
            "properties": {
                "normalized": {**STR, "description": "The normalised text (numbers, dates... read out)."},
                "chunks": {"type": "array", "items": {
                    "type": "object", "required": ["text", "pinyin", "symbols"], "additionalProperties": False,
                    "properties": {
                        "text": {**STR, "description": "The chunk as split from the request text."},
                        "pinyin": {"type": "array", "items": STR,
                                   "description": "One entry per spoken syllable, TONE3 with the tones sent to "
                                                  "the model (sandhi applied; neutral tone 5; erhua er5)."},
                        "symbols": {"type": "array", "items": STR,
                                    "description": "The model's input symbols."}}}}}},
    }


def summary_schema() -> dict[str, Any]:
    """``GET /summary``: the Web UI's ops panel; public, so it holds no secret (no key, token, path or cache URL)."""
    worker = {"type": "object", "required": ["id", "state", "restarts", "rss_mb"], "additionalProperties": False,
              "properties": {"id": STR, "state": STR, "restarts": INT,
                             "rss_mb": {"type": ["number", "null"], "description": "Resident memory (MiB), null "
                                                                                   "before the first sample."}}}
    cache = {"type": ["object", "null"], "required": ["backend", "up", "hits", "misses", "hit_ratio"],
             "additionalProperties": False,
             "properties": {"backend": {**STR, "description": "memory, redis or disabled."}, "up": BOOL,
                            "hits": INT, "misses": INT, "hit_ratio": {"type": "number", "minimum": 0, "maximum": 1}}}
    return {
        "type": "object", "additionalProperties": False,
        "required": ["accepting", "workers", "target", "queue_depth", "in_flight", "cache", "api_key_required",
                     "limits"],
        "properties": {
            "accepting": BOOL, "workers": {"type": "array", "items": worker}, "target": INT,
            "queue_depth": INT, "in_flight": INT, "cache": cache,
            "api_key_required": {**BOOL, "description": "Whether /tts, /frontend and /v1 need "
                                                        "Authorization: Bearer <one of server.api_keys>."},
            "limits": {"type": "object", "required": ["max_text_chars"], "properties": {"max_text_chars": INT}}}}


def tts_request(config: Config) -> dict[str, Any]:
    limit = config.server.max_text_chars
    voices = [voice for voice in available_voices(config) if voice not in config.engines.voice_map]
    return {
        "type": "object", "required": ["text"], "additionalProperties": False,
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": limit, "pattern": r"\S",
                     "description": f"Text to speak (Chinese; digits, dates and Latin letters are read out). "
                                    f"At most server.max_text_chars ({limit}) characters, longer -> 413. Text "
                                    f"with nothing speakable -> 400. {ssml.DESCRIPTION}",
                     "examples": ["今天天气真好。", ssml.EXAMPLE]},
            # null = absent for every optional field (the handler treats them alike).
            "emotion": {"type": ["string", "null"], "enum": [*EMOTION_SPELLINGS, None], "default": "neutral",
                        "description": "Emotion (case-insensitive); 'hate' is an alias of disgust."},
            "speed": {"type": ["number", "null"], "minimum": SPEED_MIN, "maximum": SPEED_MAX, "default": 1.0},
            "voice": {"type": ["string", "null"], "enum": [*voices, None],
                      "description": f"Voice id of the engine ({config.workers.engine}); 'default' = its own "
                                     f"voice."},
            "format": {"type": ["string", "null"], "enum": [*FORMAT_SPELLINGS, None], "default": "wav",
                       "description": "Audio format (case-insensitive); ogg = opus, wave = wav, s16le/raw = pcm "
                                      "(headerless s16le mono, rate in X-Sample-Rate)."},
            "sample_rate": {"type": ["integer", "null"], "minimum": MIN_SAMPLE_RATE, "maximum": MAX_SAMPLE_RATE,
                            "description": "Resample to this rate (mp3/opus use the next rate their codec "
                                           "supports; the rate used is in X-Sample-Rate)."},
            "stream": {"type": ["boolean", "null"], "default": False,
                       "description": "Stream long text: chunks are synthesized on several workers in parallel "
                                      "and sent in order with chunked transfer encoding (flac is sent once "
                                      "complete). Errors after the first byte abort the connection. With "
                                      "``timestamps``: Server-Sent Events (speech.audio.delta, "
                                      "speech.timestamps after each chunk's audio, speech.audio.done)."},
            "timestamps": {"type": ["boolean", "null"], "default": False,
                           "description": "Answer JSON (TimedSpeech): the audio in base64 with per-character "
                                          "and per-word start/end times from the model's own durations. "
                                          "Engines without durations (sambert-hifigan) -> 400."},
            "captions": {"type": ["string", "null"], "enum": [*CAPTION_FORMATS, None],
                         "description": "Answer a caption file (SubRip or WebVTT) built from the timestamps "
                                        "instead of audio; not with ``stream``. sambert-hifigan -> 400."},
        }}


def timed_schemas() -> dict[str, Any]:
    """The answer of ``"timestamps": true`` (``tts_ops.service.captions.timed_body``)."""
    timing = {"type": "object", "required": ["text", "start_s", "end_s"], "additionalProperties": False,
              "properties": {"text": STR, "start_s": {"type": "number", "minimum": 0},
                             "end_s": {"type": "number", "minimum": 0}}}
    return {
        "Timing": timing,
        "TimedSpeech": {
            "type": "object", "additionalProperties": False,
            "required": ["audio", "format", "sample_rate", "duration_s", "timestamps", "words"],
            "properties": {
                "audio": {**STR, "contentEncoding": "base64", "description": "The audio file, base64."},
                "format": {**STR, "description": "Its format (canonical name: wav, mp3, opus, flac, pcm)."},
                "sample_rate": INT, "duration_s": {"type": "number"},
                "timestamps": {"type": "array", "items": schema_ref("Timing"),
                               "description": "Every character of the text exactly once, in order; a span the "
                                              "normaliser rewrote (2024, 3.5%) is one entry; an entry's end "
                                              "includes the pause after it; silent characters have start = end. "
                                              "The last end is the audio's duration."},
                "words": {"type": "array", "items": schema_ref("Timing"),
                          "description": "The same times per word (jieba segmentation), punctuation left out."}}},
    }


def paths(config: Config) -> dict[str, Any]:
    return {
        "/": {"get": {"operationId": "webUi", "summary": "Web UI", "tags": ["public"],
                      "responses": {"200": {"description": "The Web UI page.",
                                            "content": {"text/html": {"schema": STR}}}}}},
        "/health": {"get": {
            "operationId": "health", "summary": "Liveness for monitors", "tags": ["public"],
            "description": "Byte for byte the reference deployment's answer: {\"status\":\"healthy\"} while at "
                           "least one worker is ready, {\"status\":\"unhealthy\"} with 503 otherwise (and while "
                           "draining).",
            "responses": {"200": ok("At least one worker is ready.", schema_ref("Health")),
                          "503": ok("No worker ready, or shutting down.", schema_ref("Health"))}}},
        "/ready": {"get": {
            "operationId": "ready", "summary": "Readiness with worker counts", "tags": ["public"],
            "responses": {"200": ok("Ready to serve.", schema_ref("Ready")),
                          "503": ok("Not ready (no ready worker, or draining).", schema_ref("Ready"))}}},
        "/summary": {"get": {
            "operationId": "summary", "summary": "Ops summary for the Web UI (workers, queue, cache)",
            "tags": ["public"],
            "responses": {"200": ok("Workers with state, restarts and RSS; queue depth; cache hit ratio.",
                                    schema_ref("Summary"))}}},
        "/tts": {"post": tts_operation(config)},
        "/frontend": {"post": {
            "operationId": "frontend", "summary": "Phonemizer view: what the model would be given", "tags": ["public"],
            "security": public_security(config),
            "requestBody": {"required": True, "content": json_content(schema_ref("FrontendRequest"))},
            "responses": {"200": ok("The normalised text and, per chunk, its pinyin and symbols.",
                                    schema_ref("FrontendView")),
                          **errors("Error", 400, 401, 413, 415, 500, 502, 503, 504, texts={
                              400: "Invalid request, or an engine without a phonemizer view (sambert-hifigan).",
                              413: "Request body larger than ``server.max_body_bytes``, or ``text`` longer than "
                                   "``server.max_text_chars``."})}}},
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "tags": ["public"],
            "responses": {"200": ok("The OpenAPI document of the running daemon.",
                                    {"type": "object", "required": ["openapi", "paths"]})}}},
        **docs_paths(),
        "/output/{name}": {"get": {
            "operationId": "savedOutput", "summary": "Saved audio (when output.save is on)", "tags": ["public"],
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                            "description": "File name as saved: YYYYMMDD-HHMMSS-<request id>."
                                           f"<{'|'.join(fmt.extension for fmt in FORMATS.values())}>"}],
            "responses": {"200": {"description": "The saved file.", "content": audio_content()},
                          **errors("Error", 404)}}},
    }


def docs_paths() -> dict[str, Any]:
    """Swagger UI (``tts_ops.http.docs``): the page and the packaged assets it loads, nothing from a CDN."""
    content_types = sorted(set(ASSETS.values()))
    return {
        DOCS_PATH: {"get": {
            "operationId": "docs", "summary": "Swagger UI for this document", "tags": ["public"],
            "responses": {"200": {"description": "The Swagger UI page (it loads /openapi.json).",
                                  "content": {"text/html": {"schema": STR}}}}}},
        DOCS_PATH + "/{asset}": {"get": {
            "operationId": "docsAsset", "summary": "A file of the packaged Swagger UI", "tags": ["public"],
            "parameters": [{"name": "asset", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": list(ASSETS)}}],
            "responses": {"200": {"description": "The file.",
                                  "content": {media: {"schema": BINARY} for media in content_types}},
                          **errors("Error", 404)}}},
    }


def tts_operation(config: Config) -> dict[str, Any]:
    limit = config.server.max_text_chars
    texts = {
        400: "Invalid request: a body that is not JSON (malformed, or nested too deeply to parse), or a field the "
             "message names. Also text that the schema accepts but that has nothing speakable (only emoji, "
             "punctuation or control characters), a voice the engine does not have, and ``timestamps`` or "
             "``captions`` on an engine that does not report times (sambert-hifigan).",
        413: f"Request body larger than ``server.max_body_bytes``, or ``text`` longer than "
             f"``server.max_text_chars`` ({limit}) characters.",
    }
    return {
        "operationId": "tts", "summary": "Synthesize text (the reference API)", "tags": ["public"],
        "security": public_security(config),
        "requestBody": {"required": True, "content": json_content(schema_ref("TtsRequest"))},
        "responses": {"200": {"description": "The audio. Streamed (chunked) when ``stream`` is true. JSON with "
                                             "``timestamps``, a caption file with ``captions``, Server-Sent "
                                             "Events with ``stream`` and ``timestamps``.",
                              "headers": audio_headers(openai=False),
                              "content": {**audio_content(), **json_content(schema_ref("TimedSpeech")),
                                          **{media: {"schema": STR} for media, _ in CAPTION_FORMATS.values()},
                                          "text/event-stream": {"schema": STR}}},
                      **errors("Error", 400, 401, 413, 415, 500, 502, 503, 504, texts=texts)}}
