"""Validation of the public API's request bodies into worker jobs (daemon process, pure logic).

Every client mistake becomes a ``RequestError`` with the HTTP status and a message naming the field, so handlers
never answer 500 for bad input.

Voices are made canonical (``canonical_voice``): ``default`` and the engine's own default voice id (``baker`` for the
bundled engine, ``engines.sambert_hifigan.default_voice`` for Sambert) both become "no voice" in the job, so the
same audio has one cache key whichever endpoint or spelling asked for it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from tts_ops.http.ssml import ssml_of
from tts_ops.service.errors import RequestError
from tts_ops.service.voices import engine_default_voice
from tts_vocab import SynthesisJob, normalize_emotion
from tts_vocab.engines import engine_descriptor
from tts_vocab.errors import InvalidRequest
from tts_vocab.fields import parse_flag, parse_sample_rate, parse_speed, parse_text, parse_voice
from tts_vocab.formats import normalize_format
from tts_vocab.messages import PhonemizeRequest
from tts_vocab.timings import CAPTION_FORMATS

__all__ = ["TtsRequest", "as_request_error", "canonical_voice", "check_content_type", "engine_default_voice",
           "load_json", "parse_emotion", "parse_tts", "parse_tts_body", "RequestError", "TTS_FIELDS"]

TTS_FIELDS = frozenset({"text", "emotion", "speed", "voice", "format", "sample_rate", "stream", "timestamps",
                        "captions"})
#: Bodies up to this size are remembered by ``parse_tts_body`` (256 of them: at most 1 MiB held).
MEMO_MAX_BODY_BYTES = 4096
#: ``"captions"`` values of ``POST /tts`` (tts_ops.service.captions writes them).
CAPTION_CHOICES = tuple(CAPTION_FORMATS)


@dataclass(frozen=True)
class TtsRequest:
    """A validated ``POST /tts`` body: the worker job and how to answer it."""

    job: SynthesisJob
    stream: bool = False
    #: "srt" or "vtt": answer with a caption file instead of audio (the job then has ``timestamps``).
    captions: str | None = None


def load_json(raw: bytes) -> Any:
    """A request body parsed as JSON; RequestError 400 for anything that is not (including nesting so deep that the
    parser gives up with RecursionError, which is not a ValueError)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise RequestError(400, "request body must be valid JSON: it is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise RequestError(400, "request body must be valid JSON") from None


def canonical_voice(voice: str, default_voice: str | None) -> str | None:
    """None (the job names no voice) for ``default`` and for the engine's default voice id; else ``voice``."""
    return None if voice in ("default", default_voice) else voice


def check_content_type(content_type: str) -> None:
    # Clients that send no Content-Type (curl --data-binary with -H missing) still get served; anything else
    # that is not JSON is a clear 415.
    if content_type not in ("application/json", "application/octet-stream", "") and not content_type.endswith("+json"):
        raise RequestError(415, f"Content-Type must be application/json, got {content_type}")


def as_request_error(exc: InvalidRequest, status: int = 400) -> RequestError:
    """The vocabulary's field error as the HTTP error a client sees (``param`` names the field)."""
    return RequestError(status, str(exc), param=exc.field)


def parse_tts(body: Any, *, max_text_chars: int, default_voice: str | None = None) -> TtsRequest:
    """``POST /tts`` body -> worker job and streaming flag.
    ``default_voice``: ``engine_default_voice(config)``, so naming it gives the same job as naming none."""
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object")
    unknown = set(body) - TTS_FIELDS
    if unknown:
        raise RequestError(400, f"unknown field(s): {', '.join(sorted(unknown))}", param=sorted(unknown)[0])
    try:
        text = parse_text(body.get("text"))
        if len(text) > max_text_chars:
            raise RequestError(413, f"'text' is {len(text)} characters; the limit is {max_text_chars}", param="text")
        # Checked in the order clients have always seen, so a body with several bad fields names the same one.
        emotion, speed = parse_emotion(body.get("emotion")), parse_speed(body.get("speed"))
        voice = parse_voice(body.get("voice"))
        fmt = body.get("format")
        if fmt is not None and not isinstance(fmt, str):
            raise InvalidRequest("'format' must be a string", "format")
        fmt = normalize_format("wav" if fmt is None else fmt)
        stream = body.get("stream")
        streamed = stream is not None and parse_flag(stream, "stream")
        timestamps = parse_flag(body.get("timestamps", False), "timestamps")
        captions = _parse_captions(body.get("captions"), streamed)
        job = SynthesisJob(text=text, emotion=emotion, speed=speed, format=fmt,
                           voice=canonical_voice(voice, default_voice) if voice else None,
                           sample_rate=parse_sample_rate(body.get("sample_rate")), ssml=ssml_of(text),
                           timestamps=timestamps or captions is not None)
        return TtsRequest(job, streamed, captions)
    except InvalidRequest as exc:
        raise as_request_error(exc) from None


def parse_tts_body(raw: bytes, *, max_text_chars: int, default_voice: str | None = None) -> TtsRequest:
    """``parse_tts(load_json(raw))``, remembered for small bodies: what a cache serves is the same bodies again and
    again, and parsing them was a visible share of a cache hit's CPU (bench/frontend_wrk.py). The result is frozen
    (the job, its SSML script), so one parse can answer every request that sent those bytes; errors are not
    remembered."""
    if len(raw) > MEMO_MAX_BODY_BYTES:
        return parse_tts(load_json(raw), max_text_chars=max_text_chars, default_voice=default_voice)
    return _parse_tts_memo(bytes(raw), max_text_chars, default_voice)


@functools.lru_cache(maxsize=256)
def _parse_tts_memo(raw: bytes, max_text_chars: int, default_voice: str | None) -> TtsRequest:
    return parse_tts(load_json(raw), max_text_chars=max_text_chars, default_voice=default_voice)


def _parse_captions(value: Any, streamed: bool) -> str | None:
    if value is None:
        return None
    if value not in CAPTION_CHOICES:
        raise InvalidRequest(f"'captions' must be one of {', '.join(CAPTION_CHOICES)}", "captions")
    if streamed:
        raise InvalidRequest("'captions' cannot be streamed; a stream with \"timestamps\": true sends them as "
                             "events", "captions")
    return str(value)


def check_timestamps(engine: str, job: SynthesisJob) -> None:
    """RequestError 400 naming ``timestamps`` when ``engine`` cannot time its audio (Sambert's pipeline exposes
    no durations), before any worker is asked."""
    if job.timestamps and not engine_descriptor(engine).timestamps:
        raise RequestError(400, f"engine {engine} does not report timestamps or captions; the bundled "
                                "fastspeech2-baker voice does", param="timestamps")


def parse_frontend(body: Any, *, max_text_chars: int) -> str:
    """``POST /frontend`` body (``{"text": ...}``) -> the text; the same limits as ``/tts``."""
    try:
        text = PhonemizeRequest.from_wire(body).text
    except InvalidRequest as exc:
        raise as_request_error(exc) from None
    if len(text) > max_text_chars:
        raise RequestError(413, f"'text' is {len(text)} characters; the limit is {max_text_chars}", param="text")
    return text


def parse_emotion(value: Any) -> str:
    """Canonical emotion (English, Chinese or alias spelling); RequestError 400 naming the accepted ones."""
    try:
        return normalize_emotion(value)
    except InvalidRequest as exc:
        raise as_request_error(exc) from None
