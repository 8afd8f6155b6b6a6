"""Timestamps and captions end to end: ``POST /tts`` with ``"timestamps": true`` (JSON with base64 audio),
``"captions": "srt"|"vtt"`` and a timed stream (Server-Sent Events) on a real daemon with the real model.

Every timed answer must cover every character of the request text exactly once, in order, with non-decreasing
times, and end at the audio's duration within one mel frame (12.5 ms at the bundled voice's 24 kHz, hop 300).
"""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
import soundfile as sf

from tests.conftest import http

pytestmark = pytest.mark.slow

FRAME_S = 300 / 24000
# Several chunks (max_chunk_chars 60), clause and sentence pauses, normalised spans, a line break, an emoji, Latin.
TEXT = ("今天天气真好，我们一起去公园散步吧！2024年的预算增长了3.5%，比去年多了1,000万元。"
        "他说：“OK，没问题。”\n  第二段从这里开始😀，我们再来读一读这一句比较长的话，看看分块以后时间戳是否依然连续；"
        "最后一句。")


@pytest.fixture(scope="module")
def daemon(module_daemon):
    return module_daemon()


def timed(daemon, **body) -> tuple[dict, dict, float]:
    code, headers, raw = http("POST", daemon.base_url + "/tts", {"timestamps": True, **body}, timeout=300)
    assert code == 200 and headers["Content-Type"].startswith("application/json"), raw[:300]
    answer = json.loads(raw)
    samples, rate = sf.read(io.BytesIO(base64.b64decode(answer["audio"])))
    assert rate == answer["sample_rate"]
    return answer, headers, len(samples) / rate


def assert_timeline(text: str, stamps: list[dict], duration_s: float) -> None:
    assert "".join(s["text"] for s in stamps) == text  # every character exactly once, in order
    previous_end = 0.0
    for stamp in stamps:
        assert previous_end - 1e-4 <= stamp["start_s"] <= stamp["end_s"], stamp
        previous_end = stamp["end_s"]
    assert abs(stamps[-1]["end_s"] - duration_s) <= FRAME_S
    assert stamps[0]["start_s"] < 0.5  # speech begins after the opening silence, not later


def assert_words(text: str, words: list[dict], stamps: list[dict]) -> None:
    assert words and all(w["text"] in text and w["start_s"] <= w["end_s"] for w in words)
    assert [w["start_s"] for w in words] == sorted(w["start_s"] for w in words)
    assert words[-1]["end_s"] <= stamps[-1]["end_s"]


@pytest.mark.parametrize("speed", [1.0, 1.6])
def test_timestamps_cover_the_text_and_end_with_the_audio(daemon, speed):
    answer, headers, duration = timed(daemon, text=TEXT, speed=speed)
    assert answer["format"] == "wav" and abs(answer["duration_s"] - duration) < 0.002
    assert_timeline(TEXT, answer["timestamps"], duration)
    assert_words(TEXT, answer["words"], answer["timestamps"])
    texts = [s["text"] for s in answer["timestamps"]]
    assert "2024" in texts and "3.5%" in texts and "1,000" in texts and "OK" in texts  # normalised spans whole
    pauses = {s["text"]: s["end_s"] - s["start_s"] for s in answer["timestamps"]}
    assert pauses["，"] > 0 and pauses["！"] > 0  # punctuation carries its pause
    assert pauses["😀"] == 0  # unreadable: placed, silent


def test_speed_scales_the_times(daemon):
    slow, _, slow_s = timed(daemon, text=TEXT, speed=1.0)
    fast, _, fast_s = timed(daemon, text=TEXT, speed=1.6)
    assert fast_s < 0.8 * slow_s
    assert fast["timestamps"][-1]["end_s"] < 0.8 * slow["timestamps"][-1]["end_s"]  # positive control: slow


def test_a_cached_answer_keeps_its_timestamps_and_a_respelled_text_gets_its_own(daemon):
    text = "缓存里的时间戳，也要覆盖每个字。"
    first, headers, duration = timed(daemon, text=text, emotion="sad")
    second, again, _ = timed(daemon, text=text, emotion="sad")
    assert headers["X-Cache"] == "MISS" and again["X-Cache"] == "HIT" and second == first
    code, plain, _ = http("POST", daemon.base_url + "/tts", {"text": text, "emotion": "sad"})
    assert code == 200 and plain["X-Cache"] == "MISS" and plain["Content-Type"] == "audio/wav"  # keyed apart
    respelled = text.replace("，", "， ")  # the same audio key without timestamps; its own characters here
    third, _, third_s = timed(daemon, text=respelled, emotion="sad")
    assert_timeline(respelled, third["timestamps"], third_s)


def parse_cues(body: str, fmt: str) -> list[tuple[float, float, str]]:
    sep = "." if fmt == "vtt" else ","
    clock = rf"(\d\d):(\d\d):(\d\d){re.escape(sep)}(\d\d\d)"
    blocks = body.strip("\n").split("\n\n")
    if fmt == "vtt":
        assert blocks.pop(0) == "WEBVTT"
    cues = []
    for number, block in enumerate(blocks, 1):
        lines = block.split("\n")
        if fmt == "srt":
            assert lines.pop(0) == str(number)
        match = re.fullmatch(f"{clock} --> {clock}", lines[0])
        assert match and len(lines) == 2 and lines[1].strip(), block
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, match.groups())
        cues.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000, lines[1]))
    return cues


@pytest.mark.parametrize("fmt, content_type", [("srt", "application/x-subrip"), ("vtt", "text/vtt")])
def test_captions_are_well_formed(daemon, fmt, content_type):
    code, headers, raw = http("POST", daemon.base_url + "/tts", {"text": TEXT, "captions": fmt}, timeout=300)
    assert code == 200 and headers["Content-Type"].startswith(content_type), raw[:300]
    assert headers["Content-Disposition"].endswith(f'speech.{fmt}"')
    cues = parse_cues(raw.decode("utf-8"), fmt)
    assert len(cues) >= 4
    assert "".join(text for _, _, text in cues).replace(" ", "") == "".join(TEXT.split())
    previous = 0.0
    for start, end, _ in cues:
        assert previous <= start <= end
        previous = end
    _, _, duration = timed(daemon, text=TEXT)
    assert abs(previous - duration) <= 2 * FRAME_S


def read_sse(raw: bytes) -> list[dict]:
    events = []
    for block in raw.decode("utf-8").strip().split("\n\n"):
        kind, data = block.split("\n", 1)
        event = json.loads(data.removeprefix("data: "))
        assert kind == f"event: {event['type']}"
        events.append(event)
    return events


def test_a_timed_stream_sends_timestamp_events_that_cover_the_text(daemon):
    body = {"text": TEXT, "stream": True, "timestamps": True, "format": "pcm", "speed": 1.3}
    code, headers, raw = http("POST", daemon.base_url + "/tts", body, timeout=300)
    assert code == 200 and headers["Content-Type"].startswith("text/event-stream"), raw[:300]
    events = read_sse(raw)
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "speech.audio.done" and kinds.count("speech.timestamps") >= 2  # one per chunk
    assert kinds.index("speech.audio.delta") < kinds.index("speech.timestamps")  # times follow their audio
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    duration = len(audio) / 2 / 24000
    stamps = [s for e in events if e["type"] == "speech.timestamps" for s in e["timestamps"]]
    assert_timeline(TEXT, stamps, duration)
    assert_words(TEXT, [w for e in events if e["type"] == "speech.timestamps" for w in e["words"]], stamps)
    # The same stream again is a cache HIT and still carries its timestamps.
    code, headers, raw = http("POST", daemon.base_url + "/tts", body, timeout=300)
    assert code == 200 and headers["X-Cache"] == "HIT"
    again = [s for e in read_sse(raw) if e["type"] == "speech.timestamps" for s in e["timestamps"]]
    assert again == stamps


@pytest.mark.parametrize("body, field", [
    ({"text": "你好", "timestamps": "yes"}, "timestamps"),
    ({"text": "你好", "captions": "ass"}, "captions"),
    ({"text": "你好", "captions": "srt", "stream": True}, "captions"),
])
def test_bad_timestamp_fields_are_400_naming_the_field(daemon, body, field):
    code, _, raw = http("POST", daemon.base_url + "/tts", body)
    assert code == 400 and f"'{field}'" in json.loads(raw)["error"], raw


SSML = ('<speak>第一句话先说完。<break time="700ms"/>'
        '<emotion category="happy">然后<phoneme alphabet="py" ph="hang2">行</phoneme>家开心地说，2024年见！</emotion>'
        '<break time="1s"/><say-as interpret-as="digits">110</say-as></speak>')


@pytest.mark.parametrize("stream", [False, True])
def test_ssml_timestamps_cover_the_spoken_text_with_its_breaks(daemon, stream):
    """SSML: the times cover the document's spoken text (say-as expanded), and a <break> is inside them."""
    if stream:
        body = {"text": SSML, "stream": True, "timestamps": True, "format": "pcm"}
        code, headers, raw = http("POST", daemon.base_url + "/tts", body, timeout=300)
        assert code == 200 and headers["Content-Type"].startswith("text/event-stream"), raw[:300]
        events = read_sse(raw)
        audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
        duration = len(audio) / 2 / 24000
        stamps = [s for e in events if e["type"] == "speech.timestamps" for s in e["timestamps"]]
    else:
        answer, _, duration = timed(daemon, text=SSML)
        stamps = answer["timestamps"]
    assert_timeline("第一句话先说完。然后行家开心地说，2024年见！一一零", stamps, duration)
    by_text = {s["text"]: s for s in stamps}
    # The first sentence's full stop owns the 700 ms break (plus its own pause): longer than the break.
    assert by_text["。"]["end_s"] - by_text["。"]["start_s"] >= 0.7
    assert by_text["！"]["end_s"] - by_text["！"]["start_s"] >= 1.0
