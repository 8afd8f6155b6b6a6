"""OpenAI's Server-Sent Events for ``/v1/audio/speech`` with ``stream_format: "sse"`` (daemon process):
``speech.audio.delta`` events carrying base64 audio, then one ``speech.audio.done`` with usage."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

__all__ = ["SSE_PIECE_BYTES", "OUTPUT_TOKEN_S", "sse_event", "sse_delta", "sse_done", "sse_timestamps"]

#: SSE deltas of a cache HIT are cut to this size, like a streamed answer.
SSE_PIECE_BYTES = 32 * 1024
#: Usage reported in ``speech.audio.done``: output tokens are 20 ms audio frames (input tokens are characters).
OUTPUT_TOKEN_S = 0.02


def sse_event(event: dict[str, Any]) -> bytes:
    """One Server-Sent Event as OpenAI sends them: the type as ``event:`` and the JSON object as ``data:``."""
    return (f"event: {event['type']}\ndata: " + json.dumps(event, separators=(",", ":")) + "\n\n").encode()


def sse_delta(audio: bytes) -> bytes:
    return sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode("ascii")})


def sse_timestamps(timings: dict[str, Any]) -> bytes:
    """``speech.timestamps`` (``POST /tts`` with ``"stream"`` and ``"timestamps"``): the entries of the audio sent
    so far, ``{"timestamps": [...], "words": [...]}`` as in the JSON answer, times from the stream's start."""
    return sse_event({"type": "speech.timestamps", **timings})


def sse_done(input_chars: int, duration_s: float) -> bytes:
    output = math.ceil(duration_s / OUTPUT_TOKEN_S) if duration_s > 0 else 0
    return sse_event({"type": "speech.audio.done",
                      "usage": {"input_tokens": input_chars, "output_tokens": output,
                                "total_tokens": input_chars + output}})
