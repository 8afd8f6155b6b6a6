"""Pieces every part of the OpenAPI document uses (daemon process, pure): schema atoms, references, the error
responses and their shapes, the audio answer's headers, the security requirements and the shared components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tts_ops.config import Config
from tts_vocab import FORMATS
from tts_vocab import headers as h
from tts_vocab.emotions import EMOTION_ALIASES, EMOTIONS

OPENAPI_VERSION = "3.1.0"

STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
BINARY = {"type": "string", "format": "binary"}

#: Every content type an audio answer (or a saved file) may have, in the format table's order.
AUDIO_TYPES = tuple(dict.fromkeys(fmt.content_type for fmt in FORMATS.values()))

#: Emotion spellings the document enumerates: the canonical names and the ASCII aliases (Sambert's ``hate``); the
#: handlers also accept the Chinese names and any letter case.
EMOTION_SPELLINGS = (*EMOTIONS, *(alias for alias in EMOTION_ALIASES if alias.isascii()))


def header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


REQUEST_ID = header_ref(h.REQUEST_ID)


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def audio_content() -> dict[str, Any]:
    return {media: {"schema": BINARY} for media in AUDIO_TYPES}


def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON answer carrying the request id."""
    return {"description": description, "headers": {h.REQUEST_ID: REQUEST_ID}, "content": json_content(schema)}


def public_security(config: Config) -> list[dict[str, list[str]]]:
    """With ``server.api_keys`` the key is required; without, anything (or nothing) is accepted."""
    return [{"apiKey": []}] if config.server.api_keys else [{"apiKey": []}, {}]


# --- errors --------------------------------------------------------------------------------------------------------

#: What each error status means wherever a path does not say more (``errors(..., texts=...)``).
ERROR_TEXTS: Mapping[int, str] = {
    400: "Invalid request: a body that is not JSON (malformed, or nested too deeply to parse), or a field the "
         "message names (``param`` in the OpenAI shape).",
    401: "Missing or wrong API key (only when ``server.api_keys`` is configured).",
    404: "Not found.",
    405: "Method not allowed (``Allow`` lists the methods).",
    413: "Request body larger than ``server.max_body_bytes``.",
    415: "Content-Type is not JSON.",
    500: "Internal error (see the server log for the request id).",
    502: "Synthesis failed on two workers (one retry).",
    503: "Overloaded (queue full), no worker available, or shutting down; retry after ``Retry-After`` seconds.",
    504: "Synthesis did not finish within ``server.request_timeout_s`` (queueing included).",
}


def error(description: str, schema: str = "Error", retry_after: bool = False,
          extra_headers: dict[str, Any] | None = None) -> dict[str, Any]:
    headers: dict[str, Any] = {h.REQUEST_ID: REQUEST_ID}
    if retry_after:
        headers[h.RETRY_AFTER] = header_ref(h.RETRY_AFTER)
    headers.update(extra_headers or {})
    return {"description": description, "headers": headers, "content": json_content(schema_ref(schema))}


def errors(schema: str, *statuses: int, texts: Mapping[int, str] | None = None) -> dict[str, Any]:
    """The error responses ``statuses`` with body ``schema`` (``Error`` or ``OpenAIError``); ``texts`` replaces
    the description of some statuses for this path."""
    texts = {**ERROR_TEXTS, **(texts or {})}
    extra_headers = {401: {"WWW-Authenticate": header_ref("WWW-Authenticate")}, 405: {"Allow": header_ref("Allow")}}
    return {str(status): error(texts[status], schema, retry_after=status == 503,
                               extra_headers=extra_headers.get(status)) for status in statuses}


def error_schemas() -> dict[str, Any]:
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": STR},
                  "description": "Error body of every non-OpenAI path: a human-readable message."},
        "OpenAIError": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": STR,
                    "type": {"type": "string", "enum": ["invalid_request_error", "server_error"],
                             "description": "server_error for 5xx, invalid_request_error otherwise."},
                    "param": {"type": ["string", "null"], "description": "The request field at fault, if any."},
                    "code": {"type": ["string", "null"]},
                }}},
            "description": "OpenAI's error shape, used on every /v1 path (router 404/405 and body 413 included)."},
    }


# --- audio answers -------------------------------------------------------------------------------------------------


def audio_headers(openai: bool) -> dict[str, Any]:
    """The headers of a synthesis answer; the OpenAI path adds the speed used and the model named."""
    headers: dict[str, Any] = {
        h.REQUEST_ID: REQUEST_ID,
        h.CACHE: {"description": "HIT when answered from the result cache, MISS when synthesized.",
                  "schema": {"type": "string", "enum": ["HIT", "MISS"]}},
        h.SAMPLE_RATE: {"description": "Sample rate of the audio in Hz (for pcm the only place it is stated).",
                        "schema": INT},
        h.WORKER: {"description": "Worker that synthesized the (first) chunk; absent on a cache HIT.",
                   "schema": STR},
        h.AUDIO_DURATION: {"description": "Audio duration in seconds (non-streamed answers and cache HITs).",
                           "schema": STR},
        h.SYNTHESIS_TIME: {"description": "Seconds the worker spent synthesizing (non-streamed answers).",
                           "schema": STR},
        h.ENGINE: {"description": "The engine that produced the audio.", "schema": STR},
        h.MODEL_VERSION: {"description": "The model version of that engine (part of the cache key).",
                          "schema": STR},
        h.OUTPUT_URL: {"description": "Where the saved copy is (GET /output/{name}) when output.save is on; "
                                      "not on streamed answers, whose headers leave before the audio is "
                                      "complete (the copy is saved all the same).", "schema": STR},
    }
    if openai:
        headers[h.SPEED_APPLIED] = {
            "description": "The speed actually used: the requested speed clamped into 0.5-2.0.", "schema": STR}
        headers[h.MODEL] = {"description": "The model named in the request.", "schema": STR}
    return headers


# --- components ----------------------------------------------------------------------------------------------------


def components_headers() -> dict[str, Any]:
    return {
        h.REQUEST_ID: {"description": "The request id (the client's X-Request-ID when it is sane, else generated); "
                                      "also in the access log.", "required": True, "schema": {"type": "string"}},
        h.RETRY_AFTER: {"description": "Seconds to wait before retrying (server.retry_after_s).",
                        "schema": {"type": "string"}},
        "WWW-Authenticate": {"description": "Bearer challenge.", "schema": {"type": "string"}},
        "Allow": {"description": "Methods the path supports.", "schema": {"type": "string"}},
    }


def security_schemes() -> dict[str, Any]:
    return {
        "apiKey": {"type": "http", "scheme": "bearer",
                   "description": "One of server.api_keys (Authorization: Bearer <key>), required on /v1/* "
                                  "and /tts when keys are configured; without keys anything is accepted."},
        "adminToken": {"type": "http", "scheme": "bearer",
                       "description": "The admin token (admin.token, or the generated token_file)."},
    }
