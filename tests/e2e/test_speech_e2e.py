"""End-to-end: the official ``openai`` SDK and raw HTTP against real ``tts-ops serve`` daemons with real workers."""

from __future__ import annotations

import base64
import http.client as httplib
import io
import json
import re
from urllib.parse import urlparse

import numpy as np
import openai
import pytest
import soundfile as sf

from tests.conftest import http

pytestmark = pytest.mark.slow

SHORT = "今天天气真好，适合出去散步。"
LONG = ("今天天气真好，适合出去散步。我们一起去公园吧，那里有很多花。春天来了，万物复苏，小鸟在树上唱歌。"
        "孩子们在草地上奔跑，笑声传遍了整个公园。老人们坐在长椅上聊天，回忆着年轻时候的故事。"
        "湖面上有几只小船，年轻人划着船，欣赏着两岸的风景。太阳慢慢西沉，天边的云彩变成了金红色。"
        "我们沿着小路慢慢走回家，心里充满了快乐。明天我们还要再来这里。")
RATE = 24000
PAUSE_S = 0.25


def client_for(daemon, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=daemon.base_url + "/v1", api_key=key, max_retries=0, timeout=120)


def decode(data: bytes, fmt: str) -> tuple[int, int]:
    """(samples, rate) of an answer."""
    if fmt == "pcm":
        return len(np.frombuffer(data, "<i2")), RATE
    samples, rate = sf.read(io.BytesIO(data))
    return len(samples), rate


@pytest.fixture(scope="module")
def speech_daemon(module_daemon):
    # No result cache here: every answer below is synthesized, so streamed and whole results really are compared.
    return module_daemon({"cache": {"enabled": False}}, workers=2)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "wav", "pcm"])
def test_sdk_every_format_is_decodable(speech_daemon, fmt):
    response = client_for(speech_daemon).audio.speech.create(model="tts-1", voice="alloy", input=SHORT,
                                                             response_format=fmt)
    samples, rate = decode(response.content, fmt)
    assert rate == RATE and 1.5 < samples / rate < 6, samples / rate
    assert response.response.headers["X-Sample-Rate"] == "24000"
    content_type = {"mp3": "audio/mpeg", "opus": "audio/ogg", "flac": "audio/flac", "wav": "audio/wav",
                    "pcm": "audio/pcm"}[fmt]
    assert response.response.headers["Content-Type"] == content_type


def test_sdk_streaming_response_yields_pieces(speech_daemon):
    client = client_for(speech_daemon)
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="nova", input=LONG,
                                                            response_format="pcm", speed=1.0) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        pieces = list(response.iter_bytes())
    assert len(pieces) > 1
    samples = np.frombuffer(b"".join(pieces), "<i2")
    assert 25 < len(samples) / RATE < 90


def test_sse_events_concatenate_to_valid_pcm(speech_daemon):
    url = urlparse(speech_daemon.base_url)
    conn = httplib.HTTPConnection(url.hostname, url.port, timeout=120)
    conn.request("POST", "/v1/audio/speech", json.dumps({
        "model": "gpt-4o-mini-tts", "voice": "alloy", "input": LONG, "response_format": "pcm",
        "stream_format": "sse", "instructions": "Speak happily."}), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/event-stream")
    text = resp.read().decode()
    conn.close()
    events = [json.loads(line) for line in re.findall(r"^data: (.*)$", text, re.M)]
    assert len(events) > 2 and events[-1]["type"] == "speech.audio.done"
    assert {e["type"] for e in events[:-1]} == {"speech.audio.delta"}
    pcm = np.frombuffer(b"".join(base64.b64decode(e["audio"]) for e in events[:-1]), "<i2")
    assert 20 < len(pcm) / RATE < 90 and np.abs(pcm).max() > 1000
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == len(LONG) and usage["total_tokens"] == usage["input_tokens"] + usage[
        "output_tokens"]


def test_sdk_errors(speech_daemon):
    client = client_for(speech_daemon)
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="alloy", input=SHORT, response_format="aac")
    message = info.value.body["message"]
    assert "mp3, opus, flac, wav, pcm" in message and info.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="sambert-hifigan", voice="alloy", input=SHORT)
    assert "fastspeech2-baker" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="robot", input=SHORT)
    assert "alloy" in info.value.body["message"] and info.value.body["param"] == "voice"
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="alloy", input="好" * 4097)
    assert info.value.body["code"] == "string_above_max_length"
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="alloy", input="😀😀！")
    assert "speakable" in info.value.body["message"]
    code, _, body = http("GET", speech_daemon.base_url + "/v1/nothing")
    assert code == 404 and json.loads(body)["error"]["type"] == "invalid_request_error"


def test_speed_is_clamped_and_reported(speech_daemon):
    client = client_for(speech_daemon)
    fast = client.audio.speech.create(model="tts-1", voice="alloy", input=SHORT, response_format="wav", speed=4.0)
    normal = client.audio.speech.create(model="tts-1", voice="alloy", input=SHORT, response_format="wav")
    assert fast.response.headers["X-Speed-Applied"] == "2"
    assert normal.response.headers["X-Speed-Applied"] == "1"
    assert decode(fast.content, "wav")[0] < 0.7 * decode(normal.content, "wav")[0]


def test_models_list(speech_daemon):
    models = client_for(speech_daemon).models.list()
    ids = [m.id for m in models.data]
    assert ids[:3] == ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"] and "fastspeech2-baker" in ids
    assert all(m.owned_by == "tts-ops" for m in models.data)


def test_streamed_length_equals_non_streamed(speech_daemon):
    code, headers, whole = http("POST", speech_daemon.base_url + "/tts", {"text": LONG, "format": "wav"})
    assert code == 200 and "Content-Length" in headers
    code, headers, streamed = http("POST", speech_daemon.base_url + "/tts",
                                   {"text": LONG, "format": "wav", "stream": True})
    assert code == 200 and headers.get("Transfer-Encoding") == "chunked" and headers["X-Cache"] in ("HIT", "MISS")
    api = client_for(speech_daemon).audio.speech.create(model="tts-1", voice="alloy", input=LONG,
                                                        response_format="wav").content
    n_whole = decode(whole, "wav")[0]
    for other in (streamed, api):
        assert abs(decode(other, "wav")[0] - n_whole) <= PAUSE_S * RATE


def test_tts_stream_true(speech_daemon):
    code, headers, data = http("POST", speech_daemon.base_url + "/tts",
                               {"text": LONG, "format": "mp3", "emotion": "sad", "stream": True})
    assert code == 200 and headers["Content-Type"] == "audio/mpeg"
    assert headers.get("Transfer-Encoding") == "chunked" and headers["X-Cache"] == "MISS"
    assert headers["Content-Disposition"] == 'inline; filename="speech.mp3"'
    samples, rate = decode(data, "mp3")
    assert 25 < samples / rate < 100
    code, _, body = http("POST", speech_daemon.base_url + "/tts", {"text": "😀😀！", "stream": True})
    assert code == 400 and "speakable" in json.loads(body)["error"]


def test_client_disconnect_cancels_remaining_chunks(module_daemon):
    daemon = module_daemon({"engines": {"fastspeech2_baker": {"max_chunk_chars": 20}}}, workers=1)
    text = LONG * 2
    url = urlparse(daemon.base_url)
    conn = httplib.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("POST", "/v1/audio/speech", json.dumps({"model": "tts-1", "voice": "alloy", "input": text,
                                                         "response_format": "pcm"}),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read(1000)
    conn.sock.close()
    conn.close()

    def served() -> int:
        return sum(w["served"] for w in daemon.status()["workers"]["items"])

    def idle() -> bool:
        status = daemon.status()
        return status["in_flight"] == 0 and status["queue_depth"] == 0

    daemon.wait_until(lambda: "stream cancelled" in daemon.log(), 30, what="the cancellation log line")
    # A worker stays reserved until its job is answered: once none is, the cancelled stream can add nothing.
    daemon.wait_until(idle, 30, what="no chunk job in flight or queued")
    after = served()
    chunks = int(re.search(r"client gone after \d+ of (\d+) chunks", daemon.log()).group(1))
    assert after < chunks
    assert idle() and served() == after


@pytest.fixture(scope="module")
def keys_daemon(module_daemon):
    return module_daemon({"server": {"api_keys": ["sk-right", "sk-other"]}}, workers=1)


def test_api_keys(keys_daemon):
    daemon = keys_daemon
    with pytest.raises(openai.AuthenticationError) as info:
        client_for(daemon, "sk-wrong").audio.speech.create(model="tts-1", voice="alloy", input=SHORT)
    assert info.value.body["code"] == "invalid_api_key"
    audio = client_for(daemon, "sk-right").audio.speech.create(model="tts-1", voice="alloy", input=SHORT,
                                                                response_format="wav").content
    assert decode(audio, "wav")[0] > RATE
    assert client_for(daemon, "sk-other").models.list().data
    code, headers, body = http("POST", daemon.base_url + "/tts", {"text": SHORT})
    assert code == 401 and "error" in json.loads(body) and headers["WWW-Authenticate"].startswith("Bearer")
    assert http("POST", daemon.base_url + "/tts", {"text": SHORT}, token="sk-right")[0] == 200
    code, _, body = http("GET", daemon.base_url + "/v1/models")
    assert code == 401 and json.loads(body)["error"]["type"] == "invalid_request_error"
    for path in ("/health", "/ready", "/", "/openapi.json"):
        assert http("GET", daemon.base_url + path)[0] == 200, path


def test_cache_hits_are_shared_by_streamed_and_whole_answers(keys_daemon):
    daemon = keys_daemon
    # This daemon has the default in-process cache: a repeated request is a HIT with the same bytes, streamed
    # or not, and /tts shares entries with /v1 for the same audio.
    body = {"model": "tts-1", "voice": "alloy", "input": SHORT + "再见。", "response_format": "opus"}
    first = http("POST", daemon.base_url + "/v1/audio/speech", body, token="sk-right")
    second = http("POST", daemon.base_url + "/v1/audio/speech", body, token="sk-right")
    assert first[0] == second[0] == 200
    assert (first[1]["X-Cache"], second[1]["X-Cache"]) == ("MISS", "HIT") and second[2] == first[2]
    third = http("POST", daemon.base_url + "/tts", {"text": SHORT + "再见。", "format": "opus", "stream": True},
                 token="sk-right")
    assert third[1]["X-Cache"] == "HIT" and third[2] == first[2]
