"""Waveform prosody (inference/prosody.py): the time stretch keeps pitch and scales duration, varispeed and the
final rise move pitch, the tempo plan keeps the model in its natural range, and the preset table is valid.

Signals are a voiced-speech stand-in (a 160-220 Hz glide with harmonics and a syllable-like envelope), so the
pitch tracker has real periods to follow; the engine tests cover the bundled voice itself.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from inference.prosody import (
    BRIGHT_SPLIT_HZ,
    MODEL_DURATION_RANGE,
    brightness,
    energy_tilt,
    final_rise,
    final_rise_map,
    pitch_slope,
    pitch_slope_map,
    plan_tempo,
    shape,
    time_stretch,
    varispeed,
)
from tts_ops.config.engines import EmotionPreset
from tts_vocab.emotions import EMOTIONS
from tts_vocab.engines import FASTSPEECH2_PRESETS, PRESET_KEYS

RATE = 24000


def voiced(seconds: float = 2.0, f0: tuple[float, float] = (160.0, 220.0)) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(np.linspace(*f0, t.size)) / RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.3 * wave * syllables).astype(np.float32)


def median_f0(samples: np.ndarray) -> float:
    f0 = librosa.yin(samples, fmin=70, fmax=600, sr=RATE, frame_length=1920, hop_length=240)
    return float(np.median(f0[5:-5]))


def semitones(a: float, b: float) -> float:
    return float(12 * np.log2(a / b))


@pytest.mark.parametrize("factor", [0.5, 0.7, 1.43, 2.0, 2.86])
def test_time_stretch_scales_duration_and_keeps_pitch(factor):
    source = voiced()
    out = time_stretch(source, factor, RATE)
    assert out.size == pytest.approx(factor * source.size, rel=0.01)
    assert abs(semitones(median_f0(out), median_f0(source))) < 1.0, (median_f0(out), median_f0(source))
    # Loudness kept too (a stretch is not a volume change): RMS within 1 dB.
    rms = [float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) for x in (out, source)]
    assert abs(20 * np.log10(rms[0] / rms[1])) < 1.0, rms


def test_time_stretch_of_one_is_the_identity():
    source = voiced(0.5)
    assert time_stretch(source, 1.0, RATE) is source


def test_varispeed_raises_pitch_and_shortens_by_the_ratio():
    source = voiced()
    ratio = 2 ** (3 / 12)
    out = varispeed(source, ratio)
    assert out.size == pytest.approx(source.size / ratio, rel=0.01)
    assert semitones(median_f0(out), median_f0(source)) == pytest.approx(3.0, abs=0.5)


@pytest.mark.parametrize("ratio", [2 ** (-1 / 12), 2 ** (-6 / 12), 2 ** (4 / 12)])
def test_varispeed_reads_the_whole_input_whatever_the_ratio(ratio):
    """A lowered pitch (sad's pitch_st -1) lengthens the audio: once its output kept the input's length and the
    end of every chunk (the last syllable) was dropped."""
    source = np.linspace(0.0, 1.0, RATE, dtype=np.float32)
    out = varispeed(source, ratio)
    assert out.size == pytest.approx(source.size / ratio, abs=2)
    assert out[-1] == pytest.approx(1.0, abs=1e-3) and out[0] == 0.0
    glide = varispeed(source, np.full(source.size, ratio))
    assert glide.size == out.size


def test_final_rise_raises_only_the_ending():
    source = voiced(2.0, (200.0, 200.0))
    out = final_rise(source, 8.0, RATE)
    head, tail = median_f0(out[:RATE]), median_f0(out[-int(0.15 * RATE):])
    assert abs(semitones(head, 200.0)) < 0.5, head
    assert semitones(tail, 200.0) > 4.0, tail


@pytest.mark.parametrize("slope", [-3.0, 3.0])
def test_pitch_slope_glides_around_the_level_and_keeps_the_length(slope):
    source = voiced(2.0, (200.0, 200.0))
    out = pitch_slope(source, slope)
    assert out.size == pytest.approx(source.size, rel=0.002)
    start, middle, end = (median_f0(out[a:a + RATE // 4]) for a in (0, out.size // 2 - RATE // 8, out.size - RATE // 4))
    assert semitones(end, start) == pytest.approx(slope * 0.875, abs=0.6)  # centres 1/8 from each end
    assert abs(semitones(middle, 200.0)) < 0.4, middle


def clicks_after(effect, time_map, source: np.ndarray, clicks: np.ndarray) -> list[tuple[float, int]]:
    """(where the map puts each click, where the effect put it) for clicks at known input positions."""
    out = effect(source)
    found = []
    for click in clicks:
        guess = round(time_map.at(click))
        low = max(0, guess - 480)
        found.append((time_map.at(click), low + int(np.argmax(out[low:guess + 480]))))
    return found


def add_clicks(source: np.ndarray, every: int) -> np.ndarray:
    """Positions of triangular clicks (21 samples wide, so a varispeed reading 2 samples per step cannot skip one)
    added to ``source`` every ``every`` samples."""
    clicks = np.arange(every, source.size - 20, every)
    for click in clicks:
        source[click - 10:click + 11] += 1.0 - np.abs(np.arange(-10, 11)) / 11
    return clicks


@pytest.mark.parametrize("slope", [-4.0, 4.0])
def test_pitch_slope_map_says_where_each_moment_lands(slope):
    """Timestamps follow the slope: clicks at known input times come out where the map puts them (without the map
    a click mid-chunk is tens of ms off)."""
    source = np.zeros(3 * RATE, np.float32)
    clicks = add_clicks(source, RATE // 4)
    time_map = pitch_slope_map(source.size, slope)
    pairs = clicks_after(lambda x: pitch_slope(x, slope), time_map, source, clicks)
    assert max(abs(expected - found) for expected, found in pairs) <= 2
    assert max(abs(found - click) for (_, found), click in zip(pairs, clicks, strict=True)) > 0.02 * RATE  # moved
    assert time_map.length == pytest.approx(pitch_slope(source, slope).size, abs=2)
    assert pitch_slope_map(source.size, 0.0).at(RATE) == RATE


def test_final_rise_map_says_where_each_moment_lands():
    source = np.zeros(2 * RATE, np.float32)
    source[: int(1.9 * RATE)] = 0.05  # voiced until 1.9 s, then silence: the rise covers 1.4-1.9 s
    clicks = add_clicks(source, RATE // 10)
    time_map = final_rise_map(source, 12.0, RATE)
    pairs = clicks_after(lambda x: final_rise(x, 12.0, RATE), time_map, source, clicks)
    assert max(abs(expected - found) for expected, found in pairs) <= 2
    moved = [found - click for (_, found), click in zip(pairs, clicks, strict=True)]
    assert max(moved) == 0 and min(moved) < -0.05 * RATE  # the head stays, the rising tail comes earlier
    assert time_map.length == final_rise(source, 12.0, RATE).size


def test_shape_maps_slope_and_rise_together():
    source = np.zeros(3 * RATE, np.float32)
    source[: int(2.8 * RATE)] = 0.05
    clicks = add_clicks(source, RATE // 10)
    preset = {"slope_st": 4.0, "rise_st": 12.0}
    _, time_map = shape(source, preset, RATE)
    pairs = clicks_after(lambda x: shape(x, preset, RATE)[0], time_map, source, clicks)
    assert max(abs(expected - found) for expected, found in pairs) <= 2


@pytest.mark.parametrize("bright_db", [-4.0, 4.0])
def test_brightness_moves_the_highs_against_the_lows(bright_db):
    noise = np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    out = brightness(noise, bright_db, RATE)
    freqs = np.fft.rfftfreq(noise.size, 1 / RATE)
    gain = np.abs(np.fft.rfft(out)) ** 2 / np.abs(np.fft.rfft(noise)) ** 2

    def band_db(low: float, high: float) -> float:
        return float(10 * np.log10(np.mean(gain[(freqs >= low) & (freqs < high)])))

    assert abs(band_db(50, BRIGHT_SPLIT_HZ / 2)) < 0.3
    assert band_db(3000, 10000) == pytest.approx(bright_db, abs=0.2)
    assert brightness(noise, 0.0, RATE) is noise


def test_energy_tilt_fades_by_its_slope():
    source = voiced(2.0)
    out = energy_tilt(source, -6.0)
    start, end = (float(np.sqrt(np.mean(x ** 2))) for x in (out[:RATE // 4], out[-RATE // 4:]))
    reference = [float(np.sqrt(np.mean(x ** 2))) for x in (source[:RATE // 4], source[-RATE // 4:])]
    assert 20 * np.log10(end / start) - 20 * np.log10(reference[1] / reference[0]) == pytest.approx(-5.25, abs=0.75)


@pytest.mark.parametrize("speed", [0.5, 0.75, 1.0, 1.5, 2.0])
@pytest.mark.parametrize("emotion", EMOTIONS)
def test_tempo_plan_keeps_the_model_in_range_and_reaches_the_speed(emotion, speed):
    preset = FASTSPEECH2_PRESETS[emotion]
    plan = plan_tempo(preset["duration_ratio"], speed, preset.get("pitch_st", 0.0))
    model = plan.model_duration / plan.pitch  # the model's tempo once varispeed has read it faster
    assert MODEL_DURATION_RANGE[0] - 1e-9 <= model <= MODEL_DURATION_RANGE[1] + 1e-9
    # Everything the model times (its durations) reaches the listener scaled by one factor.
    assert plan.model_duration * plan.time_scale == pytest.approx(preset["duration_ratio"] / speed)


def test_tempo_plan_inside_the_range_does_not_stretch():
    plan = plan_tempo(1.0, 1.25)
    assert plan.stretch == 1.0 and plan.pitch == 1.0 and plan.model_duration == pytest.approx(0.8)


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_default_presets_are_valid_config(emotion):
    preset = FASTSPEECH2_PRESETS[emotion]
    assert set(preset) <= set(PRESET_KEYS), set(preset) - set(PRESET_KEYS)
    EmotionPreset(**preset)  # in range for the config schema (raises otherwise)


def test_presets_cover_every_emotion_and_the_schema_every_key():
    assert set(FASTSPEECH2_PRESETS) == set(EMOTIONS)
    assert set(EmotionPreset.model_fields) == set(PRESET_KEYS)
    assert dict(FASTSPEECH2_PRESETS["neutral"]) == EmotionPreset().model_dump()
