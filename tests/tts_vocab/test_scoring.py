"""The scorer's pipe messages (tts_vocab.scoring): a round trip through one JSON line, and a message that does not
fit is refused with a ValueError naming what is wrong."""

from __future__ import annotations

import json

import pytest

from tts_vocab.scoring import ScoreReply, ScoreRequest, ScorerReady, line


@pytest.mark.parametrize("message", [ScoreRequest("r-1 ünïcode", b"RIFF\0\x01\xff", "wav", 22050),
                                     ScoreReply("r-1", 3.25, None, 0.5), ScoreReply("r-2", None, "too short", 0.0),
                                     ScorerReady("distillmos 0.9.1", 42, 1.5)])
def test_round_trip_through_one_line(message):
    raw = line(message)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert type(message).from_wire(json.loads(raw)) == message


@pytest.mark.parametrize(("cls", "body", "named"), [
    (ScoreRequest, {"type": "result"}, "expected a 'score' message"),
    (ScoreRequest, {"type": "score", "request_id": "r", "format": "aiff", "sample_rate": 1, "audio": ""}, "format"),
    (ScoreRequest, {"type": "score", "request_id": "r", "format": "wav", "sample_rate": 0, "audio": ""},
     "sample_rate"),
    (ScoreRequest, {"type": "score", "request_id": "r", "format": "wav", "sample_rate": 8000, "audio": "%%"},
     "audio is not base64"),
    (ScoreRequest, {"type": "score", "extra": 1}, "unknown field(s) extra"),
    (ScoreReply, {"type": "result", "request_id": "r", "mos": None, "error": None, "score_s": 0}, "exactly one"),
    (ScoreReply, {"type": "result", "request_id": "r", "mos": float("nan"), "score_s": 0}, "mos"),
    (ScorerReady, {"type": "ready", "model": "m", "pid": True, "load_s": 1}, "pid"),
    (ScorerReady, [1, 2], "expected a 'ready' message"),
])
def test_a_message_that_does_not_fit_is_refused_naming_what(cls, body, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
        cls.from_wire(body)
