"""Validation of POST /tts bodies into worker jobs: every client mistake is a RequestError naming the field."""

from __future__ import annotations

import json
import math

import pytest

from tts_ops.config import load_config
from tts_ops.http.validation import (
    MEMO_MAX_BODY_BYTES,
    RequestError,
    check_content_type,
    engine_default_voice,
    load_json,
    parse_tts,
    parse_tts_body,
)
from tts_vocab import SynthesisJob

LIMIT = 20


def parse(body):
    return parse_tts(body, max_text_chars=LIMIT).job


def rejects(body, status: int, param: str | None, fragment: str) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse(body)
    assert info.value.status == status
    assert info.value.param == param
    assert fragment in str(info.value)
    return info.value


def test_minimal_body_gets_defaults():
    assert parse({"text": "你好"}) == SynthesisJob(text="你好", emotion="neutral", speed=1.0, format="wav")


def test_full_body():
    job = parse({"text": "你好", "emotion": "Happy", "speed": 1.5, "voice": " baker ", "format": "MP3",
                 "sample_rate": 16000, "stream": False})
    assert job == SynthesisJob(text="你好", emotion="happy", speed=1.5, voice="baker", format="mp3",
                               sample_rate=16000)


@pytest.mark.parametrize("body", [[], "text", 5, None, ["text"]])
def test_body_must_be_an_object(body):
    rejects(body, 400, None, "JSON object")


# -- text ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, status, fragment", [
    ({}, 400, "'text' is required"),
    ({"text": None}, 400, "'text' is required"),
    ({"emotion": "happy"}, 400, "'text' is required"),
    ({"text": 5}, 400, "must be a string"),
    ({"text": ["你好"]}, 400, "must be a string"),
    ({"text": True}, 400, "must be a string"),
    ({"text": ""}, 400, "must not be empty"),
    ({"text": "   "}, 400, "must not be empty"),
    ({"text": "\n\t\u3000"}, 400, "must not be empty"),  # includes the ideographic space
    ({"text": "好" * (LIMIT + 1)}, 413, f"limit is {LIMIT}"),
])
def test_text_errors(body, status, fragment):
    rejects(body, status, "text", fragment)


def test_text_at_the_limit_is_accepted_and_kept_verbatim():
    text = " " + "好" * (LIMIT - 2) + " "
    assert parse({"text": text}).text == text


# -- emotion ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("neutral", "neutral"), ("happy", "happy"), ("SAD", "sad"), (" Angry ", "angry"), ("fear", "fear"),
    ("surprise", "surprise"), ("disgust", "disgust"), ("hate", "disgust"), ("HATE", "disgust"), (None, "neutral"),
])
def test_emotion_accepted(value, expected):
    assert parse({"text": "你好", "emotion": value}).emotion == expected


@pytest.mark.parametrize("value, fragment", [
    ("bored", "unknown emotion 'bored'"), ("", "unknown emotion"), (1, "must be a string"),
    (["happy"], "must be a string"),
])
def test_emotion_rejected(value, fragment):
    err = rejects({"text": "你好", "emotion": value}, 400, "emotion", fragment)
    if "unknown" in fragment:
        assert "neutral, happy, sad" in str(err)


# -- speed --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    (1, 1.0), (2, 2.0), (0.5, 0.5), (2.0, 2.0), (1.25, 1.25), (None, 1.0),
])
def test_speed_accepted(value, expected):
    speed = parse({"text": "你好", "speed": value}).speed
    assert speed == expected and type(speed) is float


@pytest.mark.parametrize("value, fragment", [
    (True, "must be a number"), (False, "must be a number"), ("1.0", "must be a number"), ("fast", "must be a number"),
    ([1], "must be a number"), (math.nan, "between 0.5 and 2.0"), (math.inf, "between 0.5 and 2.0"),
    (-math.inf, "between 0.5 and 2.0"), (0.49, "got 0.49"), (2.01, "got 2.01"), (0, "between"), (3, "between"),
    (-1, "between"),
])
def test_speed_rejected(value, fragment):
    rejects({"text": "你好", "speed": value}, 400, "speed", fragment)


# -- voice --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "   ", 5, ["baker"]])
def test_voice_rejected(value):
    rejects({"text": "你好", "voice": value}, 400, "voice", "non-empty string")


def test_voice_absent_or_null_is_omitted():
    assert parse({"text": "你好"}).voice is None
    assert parse({"text": "你好", "voice": None}).voice is None


def test_default_spellings_of_the_voice_are_one_voice():
    # "default" and the engine's default voice id synthesize the same audio: both must be "no voice" in the job,
    # or one audio gets two cache keys.
    assert parse({"text": "你好", "voice": "default"}).voice is None
    bundled = {"max_text_chars": LIMIT, "default_voice": "baker"}
    for voice in ("default", "baker", " baker "):
        assert parse_tts({"text": "你好", "voice": voice}, **bundled).job.voice is None, voice
    sambert = {"max_text_chars": LIMIT, "default_voice": "zhibei_emo"}
    assert parse_tts({"text": "你好", "voice": "zhibei_emo"}, **sambert).job.voice is None
    assert parse_tts({"text": "你好", "voice": "zhitian_emo"}, **sambert).job.voice == "zhitian_emo"


def config_for(tmp_path, engine: str, **sambert):
    return load_config(overrides={"workers": {"engine": engine}, "engines": {"sambert_hifigan": sambert},
                                  "paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
                                  "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")}},
                       env={})


@pytest.mark.parametrize("engine, sambert, voices", [
    ("fastspeech2-baker", {}, ["default", "baker"]),
    ("sambert-hifigan", {}, ["default", "zhitian_emo", "zhiyan_emo", "zhibei_emo"]),
    ("sambert-hifigan", {"default_voice": "zhiyan_emo"}, ["default", "zhitian_emo", "zhiyan_emo"]),
])
def test_tts_and_openai_endpoints_give_a_voice_the_same_job_and_cache_key(tmp_path, engine, sambert, voices):
    from tts_ops.cache import cache_key
    from tts_ops.http.openai.parsing import parse_speech

    config = config_for(tmp_path, engine, **sambert)
    default_voice = engine_default_voice(config)
    assert default_voice == sambert.get("default_voice", "zhitian_emo" if engine == "sambert-hifigan" else "baker")

    def key(job):  # what SynthesisService.cache_key does with a job's voice
        return cache_key("p:", engine=engine, model_version="v", voice=job.voice or "default",
                         emotion="neutral", speed=1.0, fmt="wav", sample_rate=None, text="你好")

    keys = {}
    for voice in voices:
        tts = parse_tts({"text": "你好", "voice": voice}, max_text_chars=LIMIT, default_voice=default_voice).job
        speech = parse_speech({"model": "tts-1", "input": "你好", "voice": voice, "response_format": "wav"},
                              config).job
        assert tts.voice == speech.voice, voice
        keys[voice] = key(tts)
    same = {voice for voice in voices if voice in ("default", default_voice)}
    assert len({keys[voice] for voice in same}) == 1 and len(same) == 2
    assert len(set(keys.values())) == len(voices) - 1  # every other voice keeps a key of its own


# -- JSON bodies --------------------------------------------------------------------------------------------------
NESTED_50 = b"[" * 50 + b"]" * 50


@pytest.mark.parametrize("raw, value", [(rb'{"text": "\u4f60"}', {"text": "你"}),
                                        ('{"a": 1}'.encode("utf-16"), {"a": 1}),
                                        (NESTED_50, json.loads(NESTED_50))])
def test_load_json_parses_bodies(raw, value):
    assert load_json(raw) == value


@pytest.mark.parametrize("raw, fragment", [
    (b"{nope", "valid JSON"), (b"", "valid JSON"), (b"\xff\xfe{", "valid JSON"), (b'{"a": "\xff"}', "valid JSON"),
    (b"[" * 60000, "nested too deeply"), (b'{"a":' * 20000, "nested too deeply"),
])
def test_load_json_rejects_non_json_with_400(raw, fragment):
    with pytest.raises(RequestError) as info:
        load_json(raw)
    assert info.value.status == 400 and fragment in str(info.value)


# -- format -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("wav", "wav"), ("WAV", "wav"), (" flac ", "flac"), ("mp3", "mp3"), ("opus", "opus"), ("pcm", "pcm"),
    ("ogg", "opus"), ("wave", "wav"), ("s16le", "pcm"), ("raw", "pcm"), ("RAW", "pcm"),
])
def test_format_aliases(value, expected):
    assert parse({"text": "你好", "format": value}).format == expected


def test_null_format_means_the_default_like_every_other_optional_field():
    assert parse({"text": "你好", "format": None}).format == "wav"


@pytest.mark.parametrize("value, fragment", [
    ("aac", "unsupported audio format 'aac'"), ("", "unsupported"), (5, "must be a string"),
])
def test_format_rejected(value, fragment):
    err = rejects({"text": "你好", "format": value}, 400, "format", fragment)
    if "unsupported" in fragment:
        assert "supported:" in str(err)


# -- sample_rate --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [8000, 16000, 22050, 24000, 48000])
def test_sample_rate_accepted(value):
    assert parse({"text": "你好", "sample_rate": value}).sample_rate == value


def test_sample_rate_null_is_omitted():
    assert parse({"text": "你好", "sample_rate": None}).sample_rate is None


@pytest.mark.parametrize("value", [7999, 48001, 0, -16000, 16000.5, "16000", True])
def test_sample_rate_rejected(value):
    rejects({"text": "你好", "sample_rate": value}, 400, "sample_rate", "between 8000 and 48000")


# -- unknown fields -----------------------------------------------------------------------------------------------
def test_unknown_field_is_named():
    rejects({"text": "你好", "pitch": 2}, 400, "pitch", "unknown field(s): pitch")


def test_several_unknown_fields_are_all_named_first_one_as_param():
    err = rejects({"text": "你好", "volume": 1, "pitch": 2}, 400, "pitch", "pitch, volume")
    assert "volume" in str(err)


def test_unknown_fields_are_reported_before_a_missing_text():
    rejects({"txt": "你好"}, 400, "txt", "unknown field(s): txt")


def test_stream_flag_is_a_boolean_defaulting_to_false():
    assert parse_tts({"text": "你好", "stream": True}, max_text_chars=LIMIT).stream is True
    assert parse_tts({"text": "你好", "stream": False}, max_text_chars=LIMIT).stream is False
    assert parse_tts({"text": "你好"}, max_text_chars=LIMIT).stream is False
    rejects({"text": "你好", "stream": {}}, 400, "stream", "true or false")


def test_integer_valued_float_sample_rate_is_an_integer():
    assert parse({"text": "你好", "sample_rate": 16000.0}).sample_rate == 16000


# -- content type -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["application/json", "", "application/octet-stream",
                                          "application/merge-patch+json", "application/vnd.api+json"])
def test_content_type_accepted(content_type):
    check_content_type(content_type)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml", "text/json"])
def test_content_type_rejected(content_type):
    with pytest.raises(RequestError) as info:
        check_content_type(content_type)
    assert info.value.status == 415
    assert "application/json" in str(info.value) and content_type in str(info.value)


def test_huge_integer_speed_is_a_400_not_an_overflow():
    rejects({"text": "你好", "speed": 10 ** 400}, 400, "speed", "between 0.5 and 2.0")


def test_cache_key_accepts_a_lone_surrogate_from_json():
    from tts_ops.cache import cache_key

    key = cache_key("p:", engine="e", model_version="v", voice="default", emotion="neutral", speed=1.0, fmt="wav",
                    sample_rate=None, text="\ud800你好")
    assert key.startswith("p:audio:")


@pytest.mark.parametrize("name, emotion", [
    ("开心", "happy"), ("高兴", "happy"), ("快乐", "happy"), ("悲伤", "sad"), ("难过", "sad"), ("伤心", "sad"),
    ("生气", "angry"), ("愤怒", "angry"), ("害怕", "fear"), ("恐惧", "fear"), ("惊讶", "surprise"),
    ("吃惊", "surprise"), ("厌恶", "disgust"), ("讨厌", "disgust"), ("中性", "neutral"), ("平静", "neutral"),
])
def test_chinese_emotion_names(name, emotion):
    assert parse({"text": "你好", "emotion": name}).emotion == emotion


def test_a_remembered_body_parses_to_the_same_frozen_request():
    raw = json.dumps({"text": "今天天气真好。", "emotion": "happy", "speed": 1.2}).encode()
    first = parse_tts_body(raw, max_text_chars=1000)
    assert parse_tts_body(bytearray(raw), max_text_chars=1000) == first
    assert first == parse_tts(json.loads(raw), max_text_chars=1000)
    with pytest.raises(AttributeError):  # frozen: one parse may answer every request that sent these bytes
        first.job.text = "x"  # type: ignore[misc]


def test_a_remembered_body_still_honours_the_limits_it_was_parsed_under():
    raw = json.dumps({"text": "今天天气真好。"}).encode()
    assert parse_tts_body(raw, max_text_chars=1000).job.text == "今天天气真好。"
    with pytest.raises(RequestError) as info:
        parse_tts_body(raw, max_text_chars=3)
    assert info.value.status == 413


def test_errors_are_not_remembered_and_large_bodies_are_parsed_each_time():
    bad = json.dumps({"text": "你好", "speed": 9}).encode()
    for _ in range(2):
        with pytest.raises(RequestError) as info:
            parse_tts_body(bad, max_text_chars=1000)
        assert info.value.status == 400 and info.value.param == "speed"
    big = json.dumps({"text": "好" * (MEMO_MAX_BODY_BYTES // 3)}, ensure_ascii=False).encode()
    assert len(big) > MEMO_MAX_BODY_BYTES
    assert parse_tts_body(big, max_text_chars=10_000).job.text == "好" * (MEMO_MAX_BODY_BYTES // 3)
