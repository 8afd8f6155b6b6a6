"""``POST /tts`` fields for timestamps and captions: validation into the job, and the 400 for engines whose
pipeline exposes no durations (Sambert), given before any worker is asked."""

from __future__ import annotations

import pytest

from tts_ops.http.validation import RequestError, check_timestamps, parse_tts
from tts_vocab import SynthesisJob
from tts_vocab.engines import FASTSPEECH2_BAKER, SAMBERT_HIFIGAN


def parse(**body):
    return parse_tts({"text": "你好", **body}, max_text_chars=100)


def test_timestamps_and_captions_set_the_job_flag():
    assert parse().job.timestamps is False and parse().captions is None
    assert parse(timestamps=True).job.timestamps is True
    request = parse(captions="vtt")
    assert request.captions == "vtt" and request.job.timestamps is True
    assert parse(timestamps=True, stream=True).stream is True


@pytest.mark.parametrize("body, fragment", [
    ({"timestamps": "true"}, "'timestamps' must be true or false"),
    ({"captions": "ass"}, "'captions' must be one of srt, vtt"),
    ({"captions": "srt", "stream": True}, "'captions' cannot be streamed"),
])
def test_bad_fields_are_400_naming_them(body, fragment):
    with pytest.raises(RequestError) as caught:
        parse(**body)
    assert caught.value.status == 400 and fragment in str(caught.value)
    assert caught.value.param == next(iter(body))


def test_sambert_refuses_timestamps_with_a_400():
    with pytest.raises(RequestError) as caught:
        check_timestamps(SAMBERT_HIFIGAN.id, SynthesisJob(text="你好", timestamps=True))
    assert caught.value.status == 400 and caught.value.param == "timestamps"
    assert "does not report timestamps" in str(caught.value)
    check_timestamps(SAMBERT_HIFIGAN.id, SynthesisJob(text="你好"))  # untimed: fine
    check_timestamps(FASTSPEECH2_BAKER.id, SynthesisJob(text="你好", timestamps=True))  # positive control
