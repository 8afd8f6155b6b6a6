"""The OpenAPI 3.1 document of tts-ops, served at ``GET /openapi.json`` on the public listener (daemon process).

Hand-written on purpose: aiohttp has no schema layer (handlers take a raw request and validate by hand in
``validation.py`` / ``openai_api.py``), so there is nothing to generate it from, and a generator bolted on would
describe its own idea of the API rather than what the handlers do. Keep it exact instead: every status, header
and body here is one the code produces, and ``tests/tts_ops/openai/test_openapi.py`` runs schemathesis against
a live daemon to prove it (no 5xx, no response that contradicts this document).

Values that come from the configuration (text limits, engine, voices, the admin listener's address) are filled
in per request, so the document always describes the running daemon.

The admin API (``/admin/*``, ``/metrics``) lives on its own listener: its paths carry their own ``servers``
entry and the ``adminToken`` bearer scheme; everything else is on the public listener, where ``apiKey`` is
required only when ``server.api_keys`` is configured (without keys the document adds the optional ``{}``
alternative).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tts_ops.config import EMOTIONS

OPENAPI_VERSION = "3.1.0"
AUDIO_TYPES = ("audio/wav", "audio/flac", "audio/ogg", "audio/mpeg", "audio/pcm")
TTS_FORMATS = ("wav", "flac", "opus", "mp3", "pcm", "ogg", "wave", "s16le", "raw")
MAINTENANCE_JOBS = ("rotate_logs", "cleanup", "disk_guard")

# --- reusable pieces -------------------------------------------------------------------------------------------

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_BINARY = {"type": "string", "format": "binary"}

_REQUEST_ID = {"$ref": "#/components/headers/X-Request-ID"}
_RETRY_AFTER = {"$ref": "#/components/headers/Retry-After"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str, schema: str = "Error", retry_after: bool = False,
           extra_headers: dict[str, Any] | None = None) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-ID": _REQUEST_ID}
    if retry_after:
        headers["Retry-After"] = _RETRY_AFTER
    headers.update(extra_headers or {})
    return {"description": description, "headers": headers, "content": _json({"$ref": f"#/components/schemas/{schema}"})}


def _errors(schema: str, *statuses: int) -> dict[str, Any]:
    texts = {
        400: "Invalid request: a body that is not JSON (malformed, or nested too deeply to parse), or a field the "
             "message names (``param`` in the OpenAI shape). Also text with nothing speakable, and a voice the "
             "engine does not have.",
        401: "Missing or wrong API key (only when ``server.api_keys`` is configured).",
        404: "Not found.",
        405: "Method not allowed (``Allow`` lists the methods).",
        413: "Request body larger than ``server.max_body_bytes``" + (
            ", or ``text`` longer than ``server.max_text_chars`` characters." if schema == "Error" else "."),
        415: "Content-Type is not JSON.",
        500: "Internal error (see the server log for the request id).",
        502: "Synthesis failed on two workers (one retry).",
        503: "Overloaded (queue full), no worker available, or shutting down; retry after ``Retry-After`` seconds.",
        504: "Synthesis did not finish within ``server.request_timeout_s`` (queueing included).",
    }
    out = {}
    for status in statuses:
        extra = {"WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}} if status == 401 else None
        if status == 405:
            extra = {"Allow": {"$ref": "#/components/headers/Allow"}}
        out[str(status)] = _error(texts[status], schema, retry_after=status == 503, extra_headers=extra)
    return out


def _audio_headers(openai: bool) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "X-Request-ID": _REQUEST_ID,
        "X-Cache": {"description": "HIT when answered from the result cache, MISS when synthesized.",
                    "schema": {"type": "string", "enum": ["HIT", "MISS"]}},
        "X-Sample-Rate": {"description": "Sample rate of the audio in Hz (for pcm the only place it is stated).",
                          "schema": _INT},
        "X-Worker": {"description": "Worker that synthesized the (first) chunk; absent on a cache HIT.",
                     "schema": _STR},
        "X-Audio-Duration": {"description": "Audio duration in seconds (non-streamed answers and cache HITs).",
                             "schema": _STR},
        "X-Output-URL": {"description": "Where the saved copy is (GET /output/{name}) when output.save is on; "
                                        "not on streamed answers, whose headers leave before the audio is "
                                        "complete (the copy is saved all the same).", "schema": _STR},
    }
    if openai:
        headers["X-Speed-Applied"] = {
            "description": "The speed actually used: the requested speed clamped into 0.5-2.0.", "schema": _STR}
        headers["X-Model"] = {"description": "The model named in the request.", "schema": _STR}
    return headers


def _admin(operation: dict[str, Any], admin_url: str) -> dict[str, Any]:
    return {"servers": [{"url": admin_url, "description": "Admin listener (admin.host:admin.port)"}],
            **operation}


# --- the document --------------------------------------------------------------------------------------------------


def build_document(config: Any, admin_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document for ``config``; ``admin_url`` defaults to ``http://<admin.host>:<admin.port>``."""
    from tts_ops.http.openai_api import (MODEL_ALIAS_PATTERN, MODEL_ALIASES, OPENAI_SPEED_MAX, OPENAI_SPEED_MIN,
                                           PCM_SAMPLE_RATE, RESPONSE_FORMATS, available_voices)
    from tts_ops.service.chunk_pipeline import MAX_STREAM_PARALLELISM

    server = config.server
    engine = config.workers.engine
    voices = available_voices(config)
    tts_voices = [v for v in voices if v not in config.engines.voice_map]
    models = [*MODEL_ALIASES, engine]
    # Snapshot ids not in the list (gpt-4o-mini-tts-2025-03-20, ...) are accepted too: the pattern says which.
    model_id = {"type": "string", "anyOf": [{"enum": models}, {"pattern": MODEL_ALIAS_PATTERN}]}
    if admin_url is None:
        host = config.admin.host if config.admin.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        admin_url = f"http://{host}:{config.admin.port}"
    # With server.api_keys the key is required; without, anything (or nothing) is accepted.
    public_security = [{"apiKey": []}] if server.api_keys else [{"apiKey": []}, {}]
    admin_security = [{"adminToken": []}]

    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": _STR},
                  "description": "Error body of every non-OpenAI path: a human-readable message."},
        "OpenAIError": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": _STR,
                    "type": {"type": "string", "enum": ["invalid_request_error", "server_error"],
                             "description": "server_error for 5xx, invalid_request_error otherwise."},
                    "param": {"type": ["string", "null"], "description": "The request field at fault, if any."},
                    "code": {"type": ["string", "null"]},
                }}},
            "description": "OpenAI's error shape, used on every /v1 path (router 404/405 and body 413 included)."},
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"type": "string", "enum": ["healthy", "unhealthy"]}}},
        "Ready": {
            "type": "object", "required": ["ready", "accepting", "workers", "queue_depth", "in_flight", "limits"],
            "properties": {
                "ready": _BOOL, "accepting": _BOOL,
                "workers": {"type": "object", "required": ["ready", "total", "target", "by_state"],
                            "properties": {"ready": _INT, "total": _INT, "target": _INT,
                                           "by_state": {"type": "object", "additionalProperties": _INT}}},
                "queue_depth": _INT, "in_flight": _INT,
                "limits": {"type": "object", "required": ["max_text_chars"],
                           "description": "Request limits the Web UI shows (server.max_text_chars).",
                           "properties": {"max_text_chars": _INT}}}},
        "TtsRequest": {
            "type": "object", "required": ["text"], "additionalProperties": False,
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": server.max_text_chars, "pattern": r"\S",
                         "description": f"Text to speak (Chinese; digits, dates and Latin letters are read out). "
                                        f"At most server.max_text_chars ({server.max_text_chars}) characters, "
                                        f"longer -> 413. Text with nothing speakable -> 400."},
                # null = absent for every optional field (the handler treats them alike).
                "emotion": {"type": ["string", "null"], "enum": [*EMOTIONS, "hate", None], "default": "neutral",
                            "description": "Emotion (case-insensitive); 'hate' is an alias of disgust."},
                "speed": {"type": ["number", "null"], "minimum": 0.5, "maximum": 2.0, "default": 1.0},
                "voice": {"type": ["string", "null"], "enum": [*tts_voices, None],
                          "description": f"Voice id of the engine ({engine}); 'default' = its own voice."},
                "format": {"type": ["string", "null"], "enum": [*TTS_FORMATS, None], "default": "wav",
                           "description": "Audio format (case-insensitive); ogg = opus, wave = wav, s16le/raw = "
                                          "pcm (headerless s16le mono, rate in X-Sample-Rate)."},
                "sample_rate": {"type": ["integer", "null"], "minimum": 8000, "maximum": 48000,
                                "description": "Resample to this rate (mp3/opus use the next rate their codec "
                                               "supports; the rate used is in X-Sample-Rate)."},
                "stream": {"type": ["boolean", "null"], "default": False,
                           "description": "Stream long text: chunks are synthesized on several workers in "
                                          "parallel and sent in order with chunked transfer encoding (flac is "
                                          "sent once complete). Errors after the first byte abort the "
                                          "connection."},
            }},
        "SpeechRequest": {
            "type": "object", "required": ["model", "input", "voice"], "additionalProperties": False,
            "properties": {
                "model": {**model_id,
                          "description": f"OpenAI model names (tts-1, tts-1-hd, gpt-4o-mini-tts and their "
                                         f"snapshots such as gpt-4o-mini-tts-2025-03-20) are aliases of the "
                                         f"configured engine ({engine}); another engine id -> 400."},
                "input": {"type": "string", "minLength": 1, "maxLength": server.max_input_chars, "pattern": r"\S",
                          "description": f"Text to speak, at most server.max_input_chars ({server.max_input_chars})"
                                         f" characters (longer -> 400, code string_above_max_length). Text with "
                                         f"nothing speakable -> 400."},
                "voice": {"oneOf": [
                    {"type": "string", "enum": voices},
                    {"type": "object", "required": ["id"], "additionalProperties": False,
                     "properties": {"id": {"type": "string", "enum": voices}}}],
                    "description": "OpenAI voice names map through engines.voice_map; the engine's own voice "
                                   "ids and 'default' work too."},
                "instructions": {"type": ["string", "null"],
                                 "description": "Free text. An emotion word selects the emotion (the first one "
                                                "found): happy/cheerful/joyful/开心/高兴/快乐/愉快, "
                                                "sad/unhappy/悲伤/难过/伤心/不开心, angry/anger/生气/愤怒, "
                                                "fear/scared/afraid/害怕/恐惧, surprise(d)/惊讶/吃惊, "
                                                "disgust(ed)/厌恶/恶心, neutral/calm/平静; English words match "
                                                "whole words with their usual endings (happily, sadly). None "
                                                "-> neutral."},
                "response_format": {"type": ["string", "null"], "enum": [*RESPONSE_FORMATS, None], "default": "mp3",
                                    "description": f"mp3 (CBR 48 kbit/s when streamed), opus (Ogg), flac, wav, pcm "
                                                   f"(s16le mono, {PCM_SAMPLE_RATE} Hz). aac is not supported "
                                                   f"(400)."},
                "speed": {"type": ["number", "null"], "minimum": OPENAI_SPEED_MIN, "maximum": OPENAI_SPEED_MAX,
                          "default": 1.0,
                          "description": "Accepted from 0.25 to 4.0 like OpenAI; the engines support 0.5-2.0, so "
                                         "the value is clamped into that range and the speed used is returned "
                                         "in X-Speed-Applied."},
                "stream_format": {"type": ["string", "null"], "enum": ["audio", "sse", None], "default": "audio",
                                  "description": "audio: the file, streamed with chunked transfer encoding; sse: "
                                                 "Server-Sent Events speech.audio.delta (base64 audio, the same "
                                                 "bytes in order) then speech.audio.done."},
                "emotion": {"type": ["string", "null"], "enum": [*EMOTIONS, "hate", None],
                            "description": "Extension: the emotion, overriding instructions."},
            }},
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
                                                    "total_tokens": _INT}}}},
        "Model": {
            "type": "object", "required": ["id", "object", "created", "owned_by"],
            "properties": {"id": model_id, "object": {"const": "model"},
                           "created": _INT, "owned_by": {"const": "tts-ops"},
                           "engine": {"type": "string", "description": "Extension: the engine behind the model."},
                           "voices": {"type": "array", "items": _STR, "description": "Extension: accepted voices."}}},
        "ModelList": {
            "type": "object", "required": ["object", "data"],
            "properties": {"object": {"const": "list"},
                           "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
                           "voices": {"type": "array", "items": _STR,
                                      "description": "Extension: voices accepted by /v1/audio/speech."}}},
        "AdminStatus": {
            "type": "object",
            "required": ["pid", "uptime_s", "accepting", "engine", "workers", "queue_depth", "queue_limit",
                         "in_flight", "totals"],
            "properties": {
                "pid": _INT, "uptime_s": _NUM, "reloads": _INT, "accepting": _BOOL, "engine": _STR,
                "workers": {"type": "object", "required": ["target", "ready", "total", "items"],
                            "properties": {"target": _INT, "ready": _INT, "total": _INT,
                                           "items": {"type": "array", "items": {"type": "object"}}}},
                "queue_depth": _INT, "queue_limit": _INT, "in_flight": _INT,
                "totals": {"type": "object", "additionalProperties": _INT},
            }},
        "ScaleRequest": {"type": "object", "required": ["workers"],
                         "properties": {"workers": {"type": "integer", "minimum": 1, "maximum": 64}}},
    }

    tts_200 = {"description": "The audio. Streamed (chunked) when ``stream`` is true.",
               "headers": _audio_headers(openai=False),
               "content": {media: {"schema": _BINARY} for media in AUDIO_TYPES}}
    speech_200 = {
        "description": "The audio, always streamed with chunked transfer encoding as chunks are synthesized (in "
                       f"parallel on up to {MAX_STREAM_PARALLELISM} workers; flac is sent once complete), or the "
                       "Server-Sent Events stream for stream_format=sse. A cache HIT is sent at once.",
        "headers": _audio_headers(openai=True),
        "content": {**{media: {"schema": _BINARY} for media in AUDIO_TYPES},
                    # Per event (OpenAPI 3.1: ``schema`` of an event stream describes one event; 3.2 calls it
                    # itemSchema): the SSE fields, with the JSON payload in ``data``.
                    "text/event-stream": {"schema": {
                        "type": "object", "required": ["event", "data"],
                        "properties": {
                            "event": {"type": "string", "enum": ["speech.audio.delta", "speech.audio.done"]},
                            "data": {"type": "string", "contentMediaType": "application/json",
                                     "contentSchema": {"oneOf": [
                                         {"$ref": "#/components/schemas/SpeechAudioDeltaEvent"},
                                         {"$ref": "#/components/schemas/SpeechAudioDoneEvent"}]}}}}}}}

    paths: dict[str, Any] = {
        "/": {"get": {"operationId": "webUi", "summary": "Web UI", "tags": ["public"],
                      "responses": {"200": {"description": "The Web UI page.",
                                            "content": {"text/html": {"schema": _STR}}}}}},
        "/health": {"get": {
            "operationId": "health", "summary": "Liveness for monitors", "tags": ["public"],
            "description": "Byte for byte the reference deployment's answer: {\"status\":\"healthy\"} while at "
                           "least one worker is ready, {\"status\":\"unhealthy\"} with 503 otherwise (and while "
                           "draining).",
            "responses": {
                "200": {"description": "At least one worker is ready.", "headers": {"X-Request-ID": _REQUEST_ID},
                        "content": _json({"$ref": "#/components/schemas/Health"})},
                "503": {"description": "No worker ready, or shutting down.",
                        "headers": {"X-Request-ID": _REQUEST_ID},
                        "content": _json({"$ref": "#/components/schemas/Health"})}}}},
        "/ready": {"get": {
            "operationId": "ready", "summary": "Readiness with worker counts", "tags": ["public"],
            "responses": {
                "200": {"description": "Ready to serve.", "headers": {"X-Request-ID": _REQUEST_ID},
                        "content": _json({"$ref": "#/components/schemas/Ready"})},
                "503": {"description": "Not ready (no ready worker, or draining).",
                        "headers": {"X-Request-ID": _REQUEST_ID},
                        "content": _json({"$ref": "#/components/schemas/Ready"})}}}},
        "/tts": {"post": {
            "operationId": "tts", "summary": "Synthesize text (the reference API)", "tags": ["public"],
            "security": public_security,
            "requestBody": {"required": True, "content": _json({"$ref": "#/components/schemas/TtsRequest"})},
            "responses": {"200": tts_200, **_errors("Error", 400, 401, 413, 415, 500, 502, 503, 504)}}},
        "/v1/audio/speech": {"post": {
            "operationId": "createSpeech", "summary": "OpenAI-compatible speech", "tags": ["openai"],
            "security": public_security,
            "requestBody": {"required": True, "content": _json({"$ref": "#/components/schemas/SpeechRequest"})},
            "responses": {"200": speech_200, **_errors("OpenAIError", 400, 401, 413, 415, 500, 502, 503, 504)}}},
        "/v1/models": {"get": {
            "operationId": "listModels", "summary": "Models (aliases of the engine) and voices", "tags": ["openai"],
            "security": public_security,
            "responses": {"200": {"description": "The models.", "headers": {"X-Request-ID": _REQUEST_ID},
                                  "content": _json({"$ref": "#/components/schemas/ModelList"})},
                          **_errors("OpenAIError", 401)}}},
        "/v1/models/{model}": {"get": {
            "operationId": "retrieveModel", "summary": "One model", "tags": ["openai"],
            "security": public_security,
            "parameters": [{"name": "model", "in": "path", "required": True, "schema": _STR}],
            "responses": {"200": {"description": "The model.", "headers": {"X-Request-ID": _REQUEST_ID},
                                  "content": _json({"$ref": "#/components/schemas/Model"})},
                          **_errors("OpenAIError", 401, 404)}}},
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "tags": ["public"],
            "responses": {"200": {"description": "The OpenAPI document of the running daemon.",
                                  "headers": {"X-Request-ID": _REQUEST_ID},
                                  "content": _json({"type": "object", "required": ["openapi", "paths"]})}}}},
        "/output/{name}": {"get": {
            "operationId": "savedOutput", "summary": "Saved audio (when output.save is on)", "tags": ["public"],
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string"},
                            "description": "File name as saved: YYYYMMDD-HHMMSS-<request id>.<wav|flac|ogg|mp3|pcm>"}],
            "responses": {"200": {"description": "The saved file.",
                                  "content": {media: {"schema": _BINARY} for media in AUDIO_TYPES}},
                          **_errors("Error", 404)}}},

        # -- admin listener --
        "/admin/status": {"get": _admin({
            "operationId": "adminStatus", "summary": "Daemon, workers, queue and request totals", "tags": ["admin"],
            "security": admin_security,
            "responses": {"200": {"description": "Status.", "headers": {"X-Request-ID": _REQUEST_ID},
                                  "content": _json({"$ref": "#/components/schemas/AdminStatus"})},
                          **_errors("Error", 401)}}, admin_url)},
        "/admin/workers/{worker_id}/restart": {"post": _admin({
            "operationId": "adminRestartWorker", "summary": "Replace one worker (new one ready first)",
            "tags": ["admin"], "security": admin_security,
            "parameters": [{"name": "worker_id", "in": "path", "required": True, "schema": _STR,
                            "description": "Worker id as in /admin/status (w1, w2, ...)."}],
            "responses": {
                "200": {"description": "Replaced.", "headers": {"X-Request-ID": _REQUEST_ID},
                        "content": _json({"type": "object", "required": ["restarted", "replacement", "state"],
                                          "properties": {"restarted": _STR, "replacement": _STR, "state": _STR}})},
                **_errors("Error", 401, 404),
                "409": _error("The replacement did not become ready; the old worker keeps serving.")}},
            admin_url)},
        "/admin/restart": {"post": _admin({
            "operationId": "adminRollingRestart", "summary": "Rolling restart of every worker, one at a time",
            "tags": ["admin"], "security": admin_security,
            "responses": {
                "200": {"description": "Done.", "headers": {"X-Request-ID": _REQUEST_ID},
                        "content": _json({"type": "object", "required": ["replaced"],
                                          "properties": {"replaced": {"type": "array", "items": _STR}}})},
                **_errors("Error", 401),
                "409": _error("A replacement did not become ready; the restart stopped there.")}}, admin_url)},
        "/admin/scale": {"post": _admin({
            "operationId": "adminScale", "summary": "Set the number of workers", "tags": ["admin"],
            "security": admin_security,
            "requestBody": {"required": True, "content": _json({"$ref": "#/components/schemas/ScaleRequest"})},
            "responses": {
                "200": {"description": "New target and worker status.", "headers": {"X-Request-ID": _REQUEST_ID},
                        "content": _json({"type": "object", "required": ["workers", "status"],
                                          "properties": {"workers": _INT, "status": {"type": "object"}}})},
                **_errors("Error", 400, 401, 413)}}, admin_url)},
        "/admin/cache": {"get": _admin({
            "operationId": "adminCacheStats", "summary": "Result cache statistics", "tags": ["admin"],
            "security": admin_security,
            "responses": {"200": {"description": "Backend (memory, redis or disabled), whether it is up, the "
                                                 "breaker state and the counters (hits, misses, stores, ...).",
                                  "headers": {"X-Request-ID": _REQUEST_ID},
                                  "content": _json({"type": "object", "required": ["backend", "up"],
                                                    "properties": {"backend": _STR, "up": _BOOL,
                                                                   "hits": _INT, "misses": _INT}})},
                          **_errors("Error", 401)}}, admin_url)},
        "/admin/cache/purge": {"post": _admin({
            "operationId": "adminCachePurge", "summary": "Delete every cached result", "tags": ["admin"],
            "security": admin_security,
            "responses": {"200": {"description": "How many items were deleted.",
                                  "headers": {"X-Request-ID": _REQUEST_ID},
                                  "content": _json({"type": "object", "required": ["deleted", "backend"],
                                                    "properties": {"deleted": _INT, "backend": _STR}})},
                          **_errors("Error", 401),
                          "503": _error("The cache backend (Redis) is unavailable; the message says how many "
                                        "items were deleted before it failed.")}}, admin_url)},
        "/admin/maintenance/{job}": {"post": _admin({
            "operationId": "adminRunMaintenance", "summary": "Run a maintenance job now", "tags": ["admin"],
            "security": admin_security,
            "parameters": [{"name": "job", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": list(MAINTENANCE_JOBS)}}],
            "responses": {"200": {"description": "The job's status after the run.",
                                  "headers": {"X-Request-ID": _REQUEST_ID},
                                  "content": _json({"type": "object"})},
                          **_errors("Error", 401, 404)}}, admin_url)},
        "/metrics": {"get": _admin({
            "operationId": "metrics", "summary": "Prometheus metrics", "tags": ["admin"],
            "security": admin_security,
            "responses": {"200": {"description": "Prometheus text exposition format.",
                                  "content": {"text/plain": {"schema": _STR}}},
                          **_errors("Error", 401),
                          "404": _error("Metrics are disabled (metrics.enabled: false).")}}, admin_url)},
    }

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "tts-ops",
            "version": _version(),
            "description": "Chinese multi-emotion TTS behind a supervisor daemon: the reference API (POST /tts), "
                           "an OpenAI-compatible speech API (/v1), health endpoints and the admin API (its own "
                           f"listener, {admin_url}). Engine: {engine}.",
        },
        "servers": [{"url": "/", "description": "Public listener (server.host:server.port)"}],
        "tags": [{"name": "public"}, {"name": "openai", "description": "OpenAI-compatible (SDKs work unchanged)"},
                 {"name": "admin", "description": "Admin listener, bearer token from admin.token / token_file"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "headers": {
                "X-Request-ID": {"description": "The request id (the client's X-Request-ID when it is sane, else "
                                                "generated); also in the access log.", "required": True,
                                 "schema": {"type": "string"}},
                "Retry-After": {"description": "Seconds to wait before retrying (server.retry_after_s).",
                                "schema": {"type": "string"}},
                "WWW-Authenticate": {"description": "Bearer challenge.", "schema": {"type": "string"}},
                "Allow": {"description": "Methods the path supports.", "schema": {"type": "string"}},
            },
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer",
                           "description": "One of server.api_keys (Authorization: Bearer <key>), required on /v1/* "
                                          "and /tts when keys are configured; without keys anything is accepted."},
                "adminToken": {"type": "http", "scheme": "bearer",
                               "description": "The admin token (admin.token, or the generated token_file)."},
            },
        },
    }


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tts-ops")
    except Exception:  # not installed as a distribution (running from a source tree)
        return "0.0.0"


def make_handler(frontend: Any):
    """``GET /openapi.json``: the document for the daemon's current config (rebuilt per request: a SIGHUP may
    change limits or voices; it takes well under a millisecond)."""

    async def handle(request: web.Request) -> web.Response:
        document = build_document(frontend.config)
        return web.json_response(document, headers={"Cache-Control": "no-cache"})

    return handle
