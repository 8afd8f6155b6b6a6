"""SSML on a real daemon with a real worker: ``POST /tts`` (whole and streamed) and ``/v1/audio/speech`` accept a
``<speak>`` document, the cache keys it by its text, and malformed or dangerous documents are 400s naming the
problem (never a 500, never a traceback in the log)."""

from __future__ import annotations

import io
import json

import pytest
import soundfile as sf

from tests.conftest import http
from tests.tts_ops.http.test_ssml import BILLION_LAUGHS, EXTERNAL_DTD, EXTERNAL_ENTITY

pytestmark = pytest.mark.slow

RATE = 24000


def seconds(audio: bytes) -> float:
    samples, rate = sf.read(io.BytesIO(audio))
    return len(samples) / rate


def test_ssml_on_tts_and_openai_with_cache_and_stream(start_daemon):
    daemon = start_daemon({"cache": {"enabled": True}}, workers=1)
    plain = '<speak>你好<break time="0ms"/>再见</speak>'
    paused = '<speak>你好<break time="2s"/>再见</speak>'
    code, headers, short = http("POST", daemon.base_url + "/tts", {"text": plain})
    assert code == 200 and headers["X-Cache"] == "MISS", short
    code, headers, long = http("POST", daemon.base_url + "/tts", {"text": paused})
    assert code == 200 and headers["X-Cache"] == "MISS"
    assert abs(seconds(long) - seconds(short) - 2.0) < 1 / RATE * 2
    # The same document again is a HIT; the raw SSML is part of the key.
    code, headers, again = http("POST", daemon.base_url + "/tts", {"text": paused})
    assert code == 200 and headers["X-Cache"] == "HIT" and again == long
    # Streamed: the document is one chunk, rendered whole.
    code, headers, streamed = http("POST", daemon.base_url + "/tts",
                                   {"text": '<speak>流式<break time="1s"/>播放</speak>', "stream": True})
    assert code == 200 and seconds(streamed) > 1.0
    body = {"model": "tts-1", "voice": "alloy", "response_format": "wav",
            "input": '<speak><emotion category="happy">我们去银<phoneme alphabet="py" ph="xing2">行</phoneme>'
                     '</emotion><break time="500ms"/><say-as interpret-as="telephone">110</say-as></speak>'}
    code, headers, audio = http("POST", daemon.base_url + "/v1/audio/speech", body)
    assert code == 200 and seconds(audio) > 0.5, audio[:200]


@pytest.mark.parametrize(("document", "fragment"), [
    ("<speak>你好", "malformed SSML"),
    ("<speak><audio src='x.wav'/>你好</speak>", "unsupported SSML element <audio>"),
    (BILLION_LAUGHS, "DTDForbidden"),
    (EXTERNAL_ENTITY, "DTDForbidden"),
    (EXTERNAL_DTD, "DTDForbidden"),
])
def test_bad_ssml_is_a_400_naming_the_problem(daemon, document, fragment):
    code, _, raw = http("POST", daemon.base_url + "/tts", {"text": document})
    body = json.loads(raw)
    assert code == 400 and fragment in json.dumps(body, ensure_ascii=False), body
    code, _, raw = http("POST", daemon.base_url + "/v1/audio/speech",
                        {"model": "tts-1", "voice": "alloy", "input": document})
    error = json.loads(raw)["error"]
    assert code == 400 and error["param"] == "input" and fragment in error["message"], error
    # Positive control: a well-formed document on the same daemon is served.
    code, _, _ = http("POST", daemon.base_url + "/tts", {"text": "<speak>你好</speak>"})
    assert code == 200
    assert "Traceback" not in daemon.log()
