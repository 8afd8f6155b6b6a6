"""Acceptance tests of the bundled FastSpeech2 engine (real model, real inference) through the Engine contract.

Uses the session ``engine`` fixture (loaded and warm). The graph keeps dropout active at inference, so two runs of
the same text never give identical samples: assertions are about durations, silences, pitch statistics and the
output guard, never about exact audio.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference.audio import check_output
from inference.engines.base import EMOTION_ALIASES, EMOTIONS, SynthesisParams
from inference.engines.fastspeech2 import CLAUSE_SPLIT, DEFAULT_PRESETS, VOCODER_FILE, FastSpeech2Engine
from inference.errors import BootError, TextError
from inference.text.samples import PARAGRAPH  # natural Mandarin, varied punctuation, no digits

RATE = 24000
SENTENCE = "今天天气真好，适合出去散步。"  # 12 syllables
SYLLABLES = 12


def long_text(chars: int) -> str:
    """``chars`` characters of the paragraph (repeated as needed), ending with a full stop."""
    text = (PARAGRAPH * (chars // len(PARAGRAPH) + 1))[: chars - 1]
    return text.rstrip("，。！？、") + "。"


def unpunctuated(chars: int) -> str:
    bare = re.sub(r"[，。！？、]", "", PARAGRAPH)
    return (bare * (chars // len(bare) + 1))[:chars]


# -- audio measurements ------------------------------------------------------------------------------------------


def duration(samples: np.ndarray) -> float:
    return samples.size / RATE


def frame_rms(samples: np.ndarray, frame_s: float = 0.01) -> np.ndarray:
    size = int(RATE * frame_s)
    count = samples.size // size
    frames = samples[: count * size].astype(np.float64).reshape(count, size)
    return np.sqrt(np.mean(frames**2, axis=1))


def quiet_runs(samples: np.ndarray, threshold: float = 1e-3, frame_s: float = 0.01) -> list[tuple[float, float]]:
    """(start_s, length_s) of every run of 10 ms frames whose RMS is below ``threshold`` (-60 dBFS)."""
    quiet = np.concatenate([[False], frame_rms(samples, frame_s) < threshold, [False]]).astype(np.int8)
    edges = np.diff(quiet)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(start * frame_s, (end - start) * frame_s) for start, end in zip(starts, ends, strict=True)]


def pitch_p90(samples: np.ndarray, fmin: float = 70, fmax: float = 500, percentile: float = 90) -> float:
    """90th percentile of an autocorrelation pitch track over the loud frames: the top of the speaker's range.

    FastSpeech2's f0 ratio scales the *normalised* pitch contour, so it widens or narrows the range around the
    speaker's mean rather than shifting it; the top of the range is where emotions differ.
    """
    length, hop = int(0.04 * RATE), int(0.01 * RATE)
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), length)[::hop]
    frames = frames - frames.mean(axis=1, keepdims=True)
    loud = np.sqrt(np.mean(frames**2, axis=1)) >= 0.5 * np.sqrt(np.mean(samples.astype(np.float64) ** 2))
    spectrum = np.fft.rfft(frames[loud], n=2 * length)
    autocorr = np.fft.irfft(np.abs(spectrum) ** 2)[:, :length]
    low, high = int(RATE / fmax), int(RATE / fmin)
    lags = low + np.argmax(autocorr[:, low:high], axis=1)
    voiced = autocorr[np.arange(lags.size), lags] > 0.5 * autocorr[:, 0]
    assert voiced.sum() >= 20, "too few voiced frames to measure pitch"
    return float(np.percentile(RATE / lags[voiced], percentile))


def assert_valid_audio(samples: np.ndarray) -> None:
    assert isinstance(samples, np.ndarray)
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    check_output(samples, RATE)


# -- emotions and speed -------------------------------------------------------------------------------------------


def test_engine_identity(engine):
    info = engine.info()
    assert info.id == "fastspeech2-baker"
    assert info.sample_rate == RATE
    assert info.voices == ("baker",) and info.default_voice == "baker"
    assert info.model_version not in ("", "unknown")


@pytest.mark.parametrize("speed", [0.5, 2.0])
@pytest.mark.parametrize("emotion", [*EMOTIONS, *EMOTION_ALIASES])
def test_every_emotion_at_speed_extremes_gives_valid_audio(engine, emotion, speed):
    samples = engine.synthesize(SENTENCE, SynthesisParams.build(emotion, speed))
    assert_valid_audio(samples)
    per_syllable = duration(samples) / SYLLABLES
    # Baker reads ~0.24 s per syllable at speed 1; presets and speed scale that by 0.44..2.4.
    assert 0.08 <= per_syllable <= 0.7, f"{emotion} x{speed}: {duration(samples):.2f}s for {SYLLABLES} syllables"


@pytest.mark.parametrize("speed", [1.0, 2.0])  # 2.0: the pause-first stretch is deterministic too
def test_the_same_text_gives_the_same_audio_whatever_came_before(engine, speed):
    """The model's dropout stream restarts per invoke: a text repeated back to back, or after another text of the
    same length, sounds the same as the first time (a cold worker and a forked one answer alike)."""
    params = SynthesisParams.build("neutral", speed, None)
    first = engine.synthesize("你好再见", params)
    again = engine.synthesize("你好再见", params)
    after_same_length = (engine.synthesize("再见你好", params), engine.synthesize("你好再见", params))[1]
    assert np.array_equal(first, again) and np.array_equal(first, after_same_length)
    assert not np.array_equal(first, engine.synthesize("再见你好", params))  # control: another text differs


@pytest.mark.parametrize("text", ["你好，😀", "他说：“", "😀，你好"])
def test_a_clause_pause_preset_skips_clauses_with_nothing_to_say(engine, text):
    """Presets with a clause pause (fear) cut at commas: a clause of an emoji or a quote mark is silent, as it is
    for neutral, and the timings still cover every character and end with the audio."""
    fear = SynthesisParams.build("fear", 1.0, None)
    audio, timings = engine.synthesize_timed(text, fear)
    assert len(audio) > 0 and "".join(t.text for t in timings.chars) == text
    assert abs(timings.chars[-1].end_s - len(audio) / 24000) < 0.0125


def test_a_clause_pause_never_splits_a_clock_time(engine):
    """10：30 (full-width colon) is one time for the normaliser: no clause cut between its digits."""
    text = "会议在10：30开始，请准时。"
    assert CLAUSE_SPLIT.split(text) == ["会议在10：30开始，", "请准时。"]
    assert len(engine.synthesize(text, SynthesisParams.build("fear", 1.0, None))) > 0


def test_alias_hate_is_disgust():
    assert SynthesisParams.build("hate").emotion == "disgust"
    assert SynthesisParams.build(" Happy ").emotion == "happy"


def test_speed_two_is_at_least_30_percent_shorter(engine):
    normal = engine.synthesize(SENTENCE, SynthesisParams.build("neutral", 1.0))
    fast = engine.synthesize(SENTENCE, SynthesisParams.build("neutral", 2.0))
    slow = engine.synthesize(SENTENCE, SynthesisParams.build("neutral", 0.5))
    assert duration(fast) <= 0.7 * duration(normal), (duration(fast), duration(normal))
    assert duration(slow) >= 1.3 * duration(normal), (duration(slow), duration(normal))


def pitch_median(samples: np.ndarray) -> float:
    """Median pitch (Hz) of the loud frames, by the same autocorrelation track as pitch_p90."""
    return pitch_p90(samples, percentile=50)


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_speed_beyond_the_models_range_is_stretched_keeping_pitch(engine, speed):
    params = SynthesisParams.build("neutral", speed)
    plan = engine.tempo_plan(params)
    assert plan.stretch != 1.0 and 0.7 <= plan.model_duration <= 1.4, plan
    assert plan.model_duration * plan.time_scale == pytest.approx(1 / speed)
    normal = engine.synthesize(SENTENCE, SynthesisParams.build("neutral", 1.0))
    changed = engine.synthesize(SENTENCE, params)
    assert duration(changed) == pytest.approx(duration(normal) / speed, rel=0.15), (duration(changed), speed)
    # Pitch-preserving: the median F0 stays within a semitone of speed 1.0's.
    assert abs(12 * math.log2(pitch_median(changed) / pitch_median(normal))) < 1.0


def test_fear_pauses_at_the_comma(engine, by_emotion):
    # fear's preset renders clause by clause with pause_s of silence between (the comma of SENTENCE), scaled with
    # the rest of the audio by its pitch level's varispeed.
    pause = DEFAULT_PRESETS["fear"]["pause_s"] * engine.tempo_plan(SynthesisParams.build("fear")).time_scale
    neutral_gaps = [length for _, length in quiet_runs(by_emotion["neutral"])[1:-1]]
    fear_gaps = [length for _, length in quiet_runs(by_emotion["fear"])[1:-1]]
    assert pause > 0 and max(fear_gaps, default=0) >= pause, fear_gaps
    assert max(fear_gaps) > max(neutral_gaps, default=0) + pause / 2, (fear_gaps, neutral_gaps)


@pytest.fixture(scope="module")
def by_emotion(engine) -> dict[str, np.ndarray]:
    return {emotion: engine.synthesize(SENTENCE, SynthesisParams.build(emotion)) for emotion in EMOTIONS}


def test_sad_is_longer_than_neutral_by_its_duration_ratio(by_emotion):
    ratio = duration(by_emotion["sad"]) / duration(by_emotion["neutral"])
    expected = DEFAULT_PRESETS["sad"]["duration_ratio"]
    assert expected - 0.1 <= ratio <= expected + 0.15, ratio


def test_emotions_differ_in_duration(by_emotion):
    durations = {emotion: round(duration(samples), 2) for emotion, samples in by_emotion.items()}
    # Every preset has its own duration ratio, so no two emotions take the same time to say the sentence.
    assert len(set(durations.values())) == len(EMOTIONS), durations
    assert durations["angry"] < durations["neutral"] < durations["sad"], durations


def test_emotions_differ_in_pitch_range(by_emotion):
    # Measured (3 sentences x 3 runs): p90 pitch sad ~320-329 Hz, angry ~343-353, surprise ~358-381.
    # Not RMS: the model's energy_ratio input barely moves loudness (angry and sad RMS are within ~3% of
    # each other, in either order), so a loudness assertion would be flaky.
    sad, angry, surprise = (pitch_p90(by_emotion[name]) for name in ("sad", "angry", "surprise"))
    assert angry >= 1.03 * sad, (sad, angry)
    assert surprise >= 1.06 * sad, (sad, surprise)


# -- long text ----------------------------------------------------------------------------------------------------


def assert_joined_with_pauses(engine, joined: np.ndarray, chunk_sizes: list[int]) -> None:
    """``joined`` is the chunks' audio separated by exactly ``pause_s`` of digital silence, heard as a gap."""
    pause = int(round(engine.pause_s * RATE))
    assert joined.size == sum(chunk_sizes) + pause * (len(chunk_sizes) - 1)
    runs = quiet_runs(joined)
    offset = 0
    for size in chunk_sizes[:-1]:
        assert_valid_audio(joined[offset:offset + size])  # real speech in every chunk
        offset += size
        assert not joined[offset:offset + pause].any(), f"no inserted pause at {offset / RATE:.2f}s"
        offset += pause
        boundary = offset / RATE  # end of the inserted pause = start of the next chunk
        gap = next(((start, length) for start, length in runs if start - 0.02 <= boundary <= start + length + 0.02),
                   None)
        assert gap is not None, f"no silence at the chunk boundary at {boundary:.2f}s"
        # The pause plus whatever silence the vocoder put at the chunks' edges; never less than the pause.
        assert engine.pause_s - 0.02 <= gap[1] <= engine.pause_s + 1.5, (boundary, gap)
    assert_valid_audio(joined[offset:])
    assert_valid_audio(joined)


def test_long_text_is_chunked_and_joined_with_pauses(engine):
    text = long_text(600)
    chunks = engine.split(text)
    assert len(chunks) >= 8
    assert all(len(chunk) <= engine.max_chunk_chars for chunk in chunks)

    pieces = list(engine.iter_synthesize(text, SynthesisParams()))
    assert len(pieces) == len(chunks)
    pause = int(round(engine.pause_s * RATE))
    for piece in pieces[:-1]:
        assert piece.size > pause and not piece[-pause:].any()  # every piece but the last ends with the pause
    joined = np.concatenate(pieces)
    # ~0.2 s per character of Mandarin including punctuation pauses.
    assert 0.1 * len(text) <= duration(joined) <= 0.4 * len(text), duration(joined)
    sizes = [piece.size - pause for piece in pieces[:-1]] + [pieces[-1].size]
    assert_joined_with_pauses(engine, joined, sizes)


def test_unpunctuated_run_is_hard_cut_and_joined_with_pauses(engine, monkeypatch):
    text = unpunctuated(300)
    chunks = engine.split(text)
    assert len(chunks) == math.ceil(300 / engine.max_chunk_chars)
    assert "".join(chunks) == text

    # Spy on the per-chunk calls to learn where synthesize() must have put the pauses.
    sizes: list[int] = []
    real_chunk = engine.synthesize_chunk

    def spy(chunk_text, params):
        samples = real_chunk(chunk_text, params)
        sizes.append(samples.size)
        return samples

    monkeypatch.setattr(engine, "synthesize_chunk", spy)
    samples = engine.synthesize(text, SynthesisParams())
    assert len(sizes) == len(chunks)
    assert 0.1 * len(text) <= duration(samples) <= 0.4 * len(text), duration(samples)
    assert_joined_with_pauses(engine, samples, sizes)


# The decoder fails on mels over 2048 frames (~25 s): a chunk that would exceed it at a slow speed, or letters
# spelled as three syllables each, must be cut into model-sized pieces instead of failing every retry.
@pytest.mark.parametrize("text, emotion, speed", [
    ("W" * 60, "neutral", 1.0),                 # 542 ids: ~2600 frames at normal speed
    (unpunctuated(60), "sad", 0.5),             # duration ratio 2.5
    (unpunctuated(60), "neutral", 0.5),
])
def test_chunk_longer_than_the_decoder_takes_is_cut_into_pieces(engine, monkeypatch, text, emotion, speed):
    frames: list[int] = []
    real = engine._text_to_mel

    def spy(*args):
        mel = real(*args)
        frames.append(mel.shape[1])
        return mel

    monkeypatch.setattr(engine, "_text_to_mel", spy)
    samples = engine.synthesize_chunk(text, SynthesisParams.build(emotion, speed))
    assert_valid_audio(samples)
    assert len(frames) >= 2 and max(frames) <= 2048, frames


def test_extreme_configured_duration_ratio_still_synthesizes(model_store_dir):
    slow = FastSpeech2Engine(store_dir=model_store_dir, verify=False, emotions={"sad": {"duration_ratio": 2.0}})
    slow.load()
    try:
        samples = slow.synthesize_chunk(unpunctuated(60), SynthesisParams.build("sad", 0.5))  # ratio 4.0
        assert_valid_audio(samples)
    finally:
        slow.close()


def test_a_piece_the_estimate_misjudged_is_halved_and_retried(engine, monkeypatch, caplog):
    import inference.engines.fastspeech2 as fs2

    monkeypatch.setattr(fs2, "FRAMES_PER_ID", 0.1)   # the estimate now lets anything through in one piece
    monkeypatch.setattr(fs2, "MAX_IDS", 10**6)       # and the per-call id cap does not split it first
    samples = engine.synthesize_chunk("W" * 60, SynthesisParams())
    assert_valid_audio(samples)
    assert any("retrying in 2 pieces" in r.getMessage() for r in caplog.records)


# -- invalid requests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"emotion": "bored"}, "bored"),
        ({"speed": 0.4}, "0.4"),
        ({"speed": 2.01}, "2.01"),
        ({"speed": float("nan")}, "nan"),
        ({"speed": float("inf")}, "inf"),
        ({"speed": "fast"}, "fast"),
    ],
)
def test_invalid_params_raise_text_error_naming_the_value(kwargs, named):
    with pytest.raises(TextError, match=re.escape(named)):
        SynthesisParams.build(**kwargs)


@pytest.mark.parametrize("text", ["😀😀😀", "🙂！？。。。", "，，，。。。", "……", "   \n  "])
def test_nothing_speakable_raises_text_error(engine, text):
    with pytest.raises(TextError, match="nothing speakable"):
        engine.synthesize(text, SynthesisParams())


def test_unknown_voice_raises_text_error(engine):
    with pytest.raises(TextError, match="xiaoming"):
        engine.synthesize(SENTENCE, SynthesisParams.build(voice="xiaoming"))


@pytest.mark.parametrize("voice", [None, "", "default", "baker"])
def test_default_voice_spellings_are_accepted(engine, voice):
    assert engine.resolve_voice(voice) == "baker"
    assert_valid_audio(engine.synthesize("你好。", SynthesisParams.build(voice=voice)))


# -- model store problems -----------------------------------------------------------------------------------------


def corrupted_store(model_store_dir: Path, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    shutil.copytree(model_store_dir / "fastspeech2-baker", store / "fastspeech2-baker")
    vocoder = store / "fastspeech2-baker" / VOCODER_FILE
    data = bytearray(vocoder.read_bytes())
    for index in range(0, len(data), len(data) // 16):  # flip bytes, size unchanged: only sha256 can tell
        data[index] ^= 0xFF
    vocoder.write_bytes(bytes(data))
    return store


def test_corrupted_model_file_fails_load_with_boot_error_naming_it(model_store_dir, tmp_path):
    engine = FastSpeech2Engine(store_dir=corrupted_store(model_store_dir, tmp_path))
    with pytest.raises(BootError, match=re.escape(VOCODER_FILE)) as caught:
        engine.load()
    assert "checksum" in str(caught.value) and "models pull" in str(caught.value)


def test_truncated_model_file_fails_load_with_boot_error_naming_it(model_store_dir, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(model_store_dir / "fastspeech2-baker", store / "fastspeech2-baker")
    vocoder = store / "fastspeech2-baker" / VOCODER_FILE
    vocoder.write_bytes(vocoder.read_bytes()[:1000])
    with pytest.raises(BootError, match=re.escape(VOCODER_FILE)):
        FastSpeech2Engine(store_dir=store).load()


def test_unloaded_engine_refuses_to_synthesize(model_store_dir):
    from inference.errors import EngineFailure

    with pytest.raises(EngineFailure, match="before load"):
        FastSpeech2Engine(store_dir=model_store_dir).synthesize(SENTENCE, SynthesisParams())


def test_light_warm_up_renders_one_model_call(model_store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked worker's light warm-up is on the clock of a crash replacement: its text must take one acoustic and
    one vocoder call on fresh interpreters (a text whose ending the truncation guard misjudges is rendered again in
    pieces, which took four). Positive control: the full warm-up's medium text is rendered too."""
    fresh = FastSpeech2Engine(store_dir=model_store_dir)
    fresh.load()
    acoustic: list[int] = []
    vocoder: list[int] = []
    to_mel, vocode = fresh._text_to_mel, fresh._vocode
    monkeypatch.setattr(fresh, "_text_to_mel", lambda ids, *rest: (acoustic.append(len(ids)), to_mel(ids, *rest))[1])
    monkeypatch.setattr(fresh, "_vocode", lambda mel: (vocoder.append(mel.shape[1]), vocode(mel))[1])
    fresh.warm_up(light=True)
    assert len(acoustic) == 1 and len(vocoder) == 1
    fresh.warm_up()
    assert len(acoustic) >= 3
