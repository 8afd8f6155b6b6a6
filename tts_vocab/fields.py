"""Parsers of the request fields both processes accept (all processes, pure): each takes a decoded JSON value and
returns the canonical one or raises ``InvalidRequest`` naming the field, with the message a client sees.

The daemon validates a client's body with them; the worker validates the job it receives with them
(``SynthesisJob.from_wire``), so the two can never disagree about what is valid.
"""

from __future__ import annotations

import math

from tts_vocab.errors import InvalidRequest
from tts_vocab.limits import MAX_PAUSE_S, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SPEED_MAX, SPEED_MIN


def parse_text(value: object) -> str:
    if value is None:
        raise InvalidRequest("'text' is required", "text")
    if not isinstance(value, str):
        raise InvalidRequest("'text' must be a string", "text")
    if not value.strip():
        raise InvalidRequest("'text' must not be empty", "text")
    return value


def parse_speed(value: object) -> float:
    """None means 1.0. JSON allows integers too large for a float: those are out of range, not a crash."""
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(f"'speed' must be a number between {SPEED_MIN} and {SPEED_MAX}", "speed")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or not SPEED_MIN <= number <= SPEED_MAX:
        shown = value if math.isfinite(number) or isinstance(value, float) else "a number too large"
        raise InvalidRequest(f"'speed' must be between {SPEED_MIN} and {SPEED_MAX}, got {shown}", "speed")
    return number


def parse_sample_rate(value: object) -> int | None:
    """None means the engine's own rate. JSON Schema's integer includes 16000.0, so an integral float is accepted."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise InvalidRequest(f"'sample_rate' must be an integer between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE}",
                             "sample_rate")
    return value


def parse_voice(value: object) -> str | None:
    """None when no voice is named; the stripped id otherwise (canonicalising it is the daemon's business)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("'voice' must be a non-empty string", "voice")
    return value.strip()


def parse_flag(value: object, name: str) -> bool:
    """Only real JSON booleans: bool("false") is True."""
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be true or false", name)
    return value


def parse_pause(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_PAUSE_S:
        raise InvalidRequest(f"'pause_after_s' must be a number between 0 and {MAX_PAUSE_S:g}", "pause_after_s")
    return float(value)
