"""Unit tests of the OpenAI request mapping (pure logic, no daemon): models, voices, formats, speed clamping,
instructions -> emotion, errors in OpenAI's shape, API-key checks."""

from __future__ import annotations

import json

import pytest

from tts_ops.config import load_config
from tts_ops.http.errors import RequestError
from tts_ops.http.openai.parsing import clamp_speed, emotion_from_instructions, parse_speech
from tts_ops.http.openai.routes import is_protected, key_matches, model_entries, openai_error
from tts_ops.http.openai.vocab import available_voices, is_model_alias


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cfg")
    return load_config(overrides={"paths": {"state_dir": str(tmp / "s"), "runtime_dir": str(tmp / "r")},
                                  "logging": {"dir": str(tmp / "l")}, "output": {"dir": str(tmp / "o")}}, env={})


def sambert_config(tmp_path, voice_map=None):
    engines = {"voice_map": voice_map} if voice_map else {}
    return load_config(overrides={"workers": {"engine": "sambert-hifigan"}, "engines": engines,
                                  "paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
                                  "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")}},
                       env={})


def speech(config, **fields):
    body = {"model": "tts-1", "voice": "alloy", "input": "你好，世界。"}
    body.update(fields)
    return parse_speech({k: v for k, v in body.items() if v is not ...}, config)


def rejected(config, **fields) -> RequestError:
    with pytest.raises(RequestError) as info:
        speech(config, **fields)
    return info.value


@pytest.mark.parametrize("instructions, emotion", [
    ("Speak happily.", "happy"),
    ("in a cheerful tone", "happy"),
    ("JOYFUL!", "happy"),
    ("Happiness all around", "happy"),
    ("用开心的语气", "happy"),
    ("高兴地说", "happy"),
    ("快乐", "happy"),
    ("愉快地", "happy"),
    ("sad", "sad"),
    ("Read it sadly", "sad"),
    ("悲伤地", "sad"),
    ("很难过", "sad"),
    ("伤心", "sad"),
    ("unhappy voice", "sad"),
    ("not happy at all", "sad"),
    ("不开心", "sad"),
    ("angry", "angry"),
    ("say it angrily", "angry"),
    ("full of anger", "angry"),
    ("生气地", "angry"),
    ("愤怒", "angry"),
    ("fearful whisper", "fear"),
    ("sound scared", "fear"),
    ("as if afraid", "fear"),
    ("害怕", "fear"),
    ("恐惧", "fear"),
    ("surprised!", "surprise"),
    ("a surprising twist", "surprise"),
    ("惊讶", "surprise"),
    ("吃惊地", "surprise"),
    ("disgusted", "disgust"),
    ("厌恶", "disgust"),
    ("恶心", "disgust"),
    ("calmly", "neutral"),
    ("neutral", "neutral"),
    ("平静地", "neutral"),
    ("", "neutral"),
    (None, "neutral"),
    ("Speak like a pirate", "neutral"),
    ("sadistic villain", "neutral"),      # word boundaries: not "sad"
    ("a saddle", "neutral"),
    ("sharpen the scarecrow", "neutral"),
    ("calm at first, then angry", "neutral"),  # the first emotion named wins
    ("angry, then calm", "angry"),
])
def test_instructions_select_the_emotion(instructions, emotion):
    assert emotion_from_instructions(instructions) == emotion


def test_emotion_field_wins_over_instructions(config):
    assert speech(config, instructions="speak happily", emotion="sad").job.emotion == "sad"
    assert speech(config, instructions="speak happily").job.emotion == "happy"
    assert speech(config).job.emotion == "neutral"
    assert rejected(config, emotion="bored").param == "emotion"


@pytest.mark.parametrize("requested, applied", [
    (0.25, 0.5), (0.4, 0.5), (0.5, 0.5), (1, 1.0), (1.5, 1.5), (2.0, 2.0), (3, 2.0), (4.0, 2.0)])
def test_speed_is_clamped_into_the_engine_range(config, requested, applied):
    request = speech(config, speed=requested)
    assert request.job.speed == applied == clamp_speed(requested)
    assert request.headers()["X-Speed-Applied"] == f"{applied:g}"
    assert request.speed_requested == requested


@pytest.mark.parametrize("speed", [0.2, 4.01, -1, 0])
def test_speed_outside_openai_range_is_400(config, speed):
    error = rejected(config, speed=speed)
    assert error.status == 400 and error.param == "speed" and "0.25" in str(error)


@pytest.mark.parametrize("speed", ["fast", True, float("nan")])
def test_speed_must_be_a_number(config, speed):
    assert rejected(config, speed=speed).param == "speed"


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "wav", "pcm"])
def test_supported_formats(config, fmt):
    job = speech(config, response_format=fmt).job
    assert job.format == fmt
    assert job.sample_rate == (24000 if fmt == "pcm" else None)


def test_default_format_is_mp3(config):
    assert speech(config).job.format == "mp3"
    assert speech(config, response_format=None).job.format == "mp3"


@pytest.mark.parametrize("fmt", ["aac", "ogg", "MP3", "wave", "", 3])
def test_unsupported_formats_name_the_supported_ones(config, fmt):
    error = rejected(config, response_format=fmt)
    assert error.status == 400 and error.param == "response_format"
    assert "mp3, opus, flac, wav, pcm" in str(error)


@pytest.mark.parametrize("model", ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "fastspeech2-baker",
                                   # OpenAI's dated snapshots, listed or not (new ones appear over time)
                                   "tts-1-1106", "tts-1-hd-1106", "gpt-4o-mini-tts-2025-03-20",
                                   "gpt-4o-mini-tts-2025-12-15", "gpt-4o-mini-tts-2026-07-01"])
def test_models_accepted(config, model):
    assert speech(config, model=model).model == model
    assert is_model_alias(model) == (model != "fastspeech2-baker")


@pytest.mark.parametrize("model", ["tts-10", "tts-1-", "tts-1--hd", "TTS-1", "tts-1\n", "gpt-4o-mini-tts\n",
                                   "gpt-4o-mini-tts_2025", "gpt-4o-tts", "whisper-1", "tts-1-hd 1106"])
def test_near_miss_model_names_are_rejected(config, model):
    error = rejected(config, model=model)
    assert error.status == 400 and error.code == "model_not_found" and not is_model_alias(model)


def test_other_engine_model_names_the_available_one(config):
    error = rejected(config, model="sambert-hifigan")
    assert error.status == 400 and error.param == "model" and "fastspeech2-baker" in str(error)
    error = rejected(config, model="whisper-1")
    assert error.code == "model_not_found" and "tts-1" in str(error)


@pytest.mark.parametrize("voice, engine_voice", [
    ("alloy", None), ("nova", None), ("baker", None), ("default", None), ({"id": "echo"}, None)])
def test_voices_of_the_bundled_engine(config, voice, engine_voice):
    assert speech(config, voice=voice).job.voice == engine_voice


@pytest.mark.parametrize("voice", ["zhitian_emo", "robot", "Alloy", " alloy", ""])
def test_unknown_voice_lists_the_voices(config, voice):
    error = rejected(config, voice=voice)
    assert error.status == 400 and error.param == "voice"
    if voice:
        assert "alloy" in str(error) and "baker" in str(error)


def test_sambert_voices_and_mapping(tmp_path):
    config = sambert_config(tmp_path, voice_map={"alloy": "zhiyan_emo", "echo": "default", "nova": "baker"})
    assert speech(config, voice="alloy").job.voice == "zhiyan_emo"
    assert speech(config, voice="echo").job.voice is None
    assert speech(config, voice="zhitian_emo").job.voice is None  # the configured default voice
    assert speech(config, voice="zhizhe_emo").job.voice == "zhizhe_emo"
    error = rejected(config, voice="nova")
    assert "baker" in str(error) and "sambert-hifigan" in str(error)
    assert available_voices(config) == ["alloy", "echo", "default", "zhitian_emo", "zhiyan_emo", "zhizhe_emo",
                                        "zhibei_emo"]
    assert speech(config, model="sambert-hifigan").model == "sambert-hifigan"
    assert "sambert-hifigan" in str(rejected(config, model="fastspeech2-baker"))


@pytest.mark.parametrize("fields, param, fragment", [
    ({"input": ...}, "input", "Missing required parameter"),
    ({"model": ...}, "model", "Missing required parameter"),
    ({"voice": ...}, "voice", "Missing required parameter"),
    ({"input": "   "}, "input", "empty"),
    ({"input": 5}, "input", "string"),
    ({"input": "好" * 4097}, "input", "maximum length 4096"),
    ({"stream_format": "chunks"}, "stream_format", "audio, sse"),
    ({"instructions": 3}, "instructions", "string"),
    ({"colour": "red"}, "colour", "Unrecognized request argument"),
])
def test_request_errors_name_the_parameter(config, fields, param, fragment):
    error = rejected(config, **fields)
    assert error.status == 400 and error.param == param and fragment in str(error)


def test_input_at_the_limit_is_accepted(config):
    assert len(speech(config, input="好" * 4096).job.text) == 4096


def test_body_must_be_an_object(config):
    with pytest.raises(RequestError):
        parse_speech(["input"], config)


def test_stream_format(config):
    assert speech(config).sse is False
    assert speech(config, stream_format="sse").sse is True


def test_openai_error_shape():
    response = openai_error(400, "bad", param="voice", code="invalid_value")
    assert response.status == 400
    assert json.loads(response.body) == {"error": {"message": "bad", "type": "invalid_request_error",
                                                   "param": "voice", "code": "invalid_value"}}
    response = openai_error(503, "busy", headers={"Retry-After": "2"})
    assert json.loads(response.body)["error"]["type"] == "server_error"
    assert response.headers["Retry-After"] == "2"


def test_models_list_the_aliases_and_the_engine(config):
    entries = model_entries(config)
    assert [e["id"] for e in entries] == ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "tts-1-1106", "tts-1-hd-1106",
                                         "gpt-4o-mini-tts-2025-03-20", "gpt-4o-mini-tts-2025-12-15",
                                         "fastspeech2-baker"]
    assert all(e["object"] == "model" and e["owned_by"] == "tts-ops" and isinstance(e["created"], int)
               for e in entries)


def test_key_matching_and_protected_paths():
    assert key_matches("k2", ("k1", "k2"))
    assert not key_matches("k3", ("k1", "k2"))
    assert not key_matches("", ("k1",))
    assert not key_matches("k1 ", ("k1",))
    assert key_matches("ключ", ("ключ",))
    assert all(is_protected(p) for p in ("/tts", "/v1/audio/speech", "/v1/models", "/v1/anything"))
    assert not any(is_protected(p) for p in ("/", "/health", "/ready", "/static/app.js", "/openapi.json",
                                             "/output/x.wav", "/ttsx"))
