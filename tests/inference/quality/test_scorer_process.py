"""The scorer process's request handling (inference.quality.scorer_process) with the real model: the encoded audio
a client got (wav, pcm, mp3) is decoded and scored; a line that is not a request, or audio that cannot be scored,
is an error reply, never a crash."""

from __future__ import annotations

import json

import pytest

from inference.audio import encode
from inference.quality.scorer_process import score_line
from tts_vocab.scoring import ScoreRequest, line


@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3"])
def test_encoded_answers_are_decoded_and_scored(mos_scorer, synthesized, fmt):
    samples, rate = synthesized
    encoded = encode(samples, rate, fmt)
    reply = score_line(mos_scorer, line(ScoreRequest("r1", encoded.data, fmt, encoded.sample_rate)))
    assert reply.request_id == "r1" and reply.error is None
    assert reply.mos is not None and 2.5 <= reply.mos <= 5.0


@pytest.mark.parametrize(("raw", "error"), [
    (b"not json\n", "bad request"),
    (json.dumps({"type": "ready"}).encode(), "bad request: expected a 'score' message"),
    (line(ScoreRequest("short", b"\0\0" * 100, "pcm", 16000)), "too short to score"),
    (line(ScoreRequest("junk", b"not audio at all" * 100, "wav", 16000)), "cannot decode wav"),
])
def test_what_cannot_be_scored_is_an_error_reply(mos_scorer, raw, error):
    reply = score_line(mos_scorer, raw)
    assert reply.mos is None and reply.error is not None and error in reply.error
