"""Timings on the worker socket: the typed entries, and the reply's JSON trailer after the audio."""

from __future__ import annotations

import json

import pytest

from tts_vocab import InvalidRequest, SynthesisJob, SynthesisReply, headers
from tts_vocab.timings import Timing, Timings

TIMINGS = Timings((Timing("你", 0.05, 0.2), Timing("好", 0.2, 0.41), Timing("。", 0.41, 0.5)),
                  (Timing("你好", 0.05, 0.41),))


def test_timings_round_trip_through_json():
    assert Timings.from_wire(json.loads(json.dumps(TIMINGS.to_wire()))) == TIMINGS
    assert set(TIMINGS.to_wire()) == {"timestamps", "words"}


@pytest.mark.parametrize("body", [
    [], {"timestamps": "x"}, {"timestamps": [{"text": "a"}]}, {"timestamps": [{"text": 1, "start_s": 0, "end_s": 0}]},
    {"timestamps": [{"text": "a", "start_s": True, "end_s": 0}]}, {"timestamps": [], "words": {}},
    {"timestamps": [{"text": "a", "start_s": float("nan"), "end_s": 0}]},
])
def test_malformed_timings_name_the_field(body):
    with pytest.raises(InvalidRequest) as caught:
        Timings.from_wire(body)
    assert caught.value.field == "timestamps"


def test_shifted_moves_every_entry():
    moved = TIMINGS.shifted(1.5)
    assert moved.chars[0] == Timing("你", 1.55, 1.7) and moved.words[0] == Timing("你好", 1.55, 1.91)


def test_job_carries_the_flag():
    job = SynthesisJob(text="你好", timestamps=True)
    assert SynthesisJob.from_wire(json.loads(json.dumps(job.to_wire()))) == job
    with pytest.raises(InvalidRequest, match="'timestamps' must be true or false"):
        SynthesisJob.from_wire({"text": "a", "timestamps": 1})


def test_reply_sends_timings_as_a_trailer_after_the_audio():
    reply = SynthesisReply(24000, 0.5, 0.1, timings=TIMINGS)
    sent = reply.to_headers()
    body = b"RIFF-audio" + reply.to_wire()
    assert int(sent[headers.TIMINGS_BYTES]) == len(reply.to_wire())
    parsed, audio = SynthesisReply.from_wire(sent, body)
    assert audio == b"RIFF-audio" and parsed.timings == TIMINGS and parsed.duration_s == 0.5


def test_reply_without_timings_has_no_trailer():
    reply = SynthesisReply(24000, 0.5, 0.1)
    assert headers.TIMINGS_BYTES not in reply.to_headers() and reply.to_wire() == b""
    parsed, audio = SynthesisReply.from_wire(reply.to_headers(), b"audio")
    assert audio == b"audio" and parsed.timings is None


@pytest.mark.parametrize("size, trailer", [("99", b"{}"), ("2", b"[]"), ("3", b"{x}")])
def test_a_broken_trailer_is_a_protocol_error_naming_the_header(size, trailer):
    values = {**SynthesisReply(24000, 0.5, 0.1).to_headers(), headers.TIMINGS_BYTES: size}
    with pytest.raises(InvalidRequest) as caught:
        SynthesisReply.from_wire(values, b"audio" + trailer)
    assert caught.value.field == headers.TIMINGS_BYTES
