"""The messages that cross the scorer process's pipes (daemon and ``inference.quality.scorer_process``).

One JSON object per line. The daemon writes ``ScoreRequest.to_wire()`` lines to the scorer's stdin; the scorer
writes one ``ScorerReady`` line once its model is loaded, then one ``ScoreReply`` line per request, in order, on
its stdout (its logs go to stderr). Each side rebuilds what it reads with ``from_wire``, which validates the
message once where it enters the process and raises ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

from tts_vocab.formats import FORMATS

READY = "ready"
SCORE = "score"
RESULT = "result"


def _field(body: object, kind: str, fields: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("type") != kind:
        raise ValueError(f"expected a {kind!r} message, got {str(body)[:80]!r}")
    unknown = sorted(set(body) - {"type", *fields})
    if unknown:
        raise ValueError(f"{kind} message: unknown field(s) {', '.join(unknown)}")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def line(message: ScoreRequest | ScoreReply | ScorerReady) -> bytes:
    """The message as one newline-terminated JSON line (ASCII: request ids may hold anything)."""
    return json.dumps(message.to_wire(), separators=(",", ":")).encode("ascii") + b"\n"


@dataclass(frozen=True)
class ScoreRequest:
    """One finished synthesis to score: the encoded audio the client received, its format and sample rate."""

    request_id: str
    audio: bytes
    format: str
    sample_rate: int

    def to_wire(self) -> dict[str, Any]:
        return {"type": SCORE, "request_id": self.request_id, "format": self.format, "sample_rate": self.sample_rate,
                "audio": base64.b64encode(self.audio).decode("ascii")}

    @classmethod
    def from_wire(cls, body: object) -> ScoreRequest:
        body = _field(body, SCORE, ("request_id", "format", "sample_rate", "audio"))
        fmt = _text(body, "format")
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        rate = body.get("sample_rate")
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {rate!r}")
        try:
            audio = base64.b64decode(_text(body, "audio"), validate=True)
        except binascii.Error as exc:
            raise ValueError(f"audio is not base64: {exc}") from None
        return cls(_text(body, "request_id"), audio, fmt, rate)


@dataclass(frozen=True)
class ScoreReply:
    """The answer to one ``ScoreRequest``: the predicted MOS, or why the audio could not be scored."""

    request_id: str
    mos: float | None
    error: str | None = None
    #: Seconds the scorer spent decoding and scoring.
    score_s: float = 0.0

    def to_wire(self) -> dict[str, Any]:
        return {"type": RESULT, "request_id": self.request_id, "mos": self.mos, "error": self.error,
                "score_s": round(self.score_s, 4)}

    @classmethod
    def from_wire(cls, body: object) -> ScoreReply:
        body = _field(body, RESULT, ("request_id", "mos", "error", "score_s"))
        mos = None if body.get("mos") is None else _number(body, "mos")
        error = None if body.get("error") is None else _text(body, "error")
        if (mos is None) == (error is None):
            raise ValueError("result message: exactly one of mos and error must be set")
        return cls(_text(body, "request_id"), mos, error, _number(body, "score_s"))


@dataclass(frozen=True)
class ScorerReady:
    """The scorer's first line: its model is loaded and it reads requests from now on."""

    model: str
    pid: int
    load_s: float

    def to_wire(self) -> dict[str, Any]:
        return {"type": READY, "model": self.model, "pid": self.pid, "load_s": round(self.load_s, 3)}

    @classmethod
    def from_wire(cls, body: object) -> ScorerReady:
        body = _field(body, READY, ("model", "pid", "load_s"))
        pid = body.get("pid")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise ValueError(f"pid must be a positive integer, got {pid!r}")
        return cls(_text(body, "model"), pid, _number(body, "load_s"))
