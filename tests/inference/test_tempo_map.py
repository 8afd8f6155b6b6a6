"""The stretch's time map (inference/tempo_map.py): a fast speed takes its time from pauses first, then vowels,
consonants least; it hits the wanted length exactly; slowing down and unlabelled audio stay uniform; the engine's
timestamps follow the map."""

from __future__ import annotations

import numpy as np
import pytest

from inference.engines.base import SynthesisParams
from inference.prosody import apply_plan, plan_tempo, time_stretch
from inference.tempo_map import Kind, TimeMap, plan_map, resample_kinds, symbol_kinds

RATE = 24000
HOP = 300


def labelled() -> np.ndarray:
    """Edge silence, consonant, vowel, a pause, consonant, vowel, edge silence: 0.1 s each but the vowels 0.2 s
    (0.9 s in all)."""
    parts = [(Kind.PAUSE, 0.1), (Kind.CONSONANT, 0.1), (Kind.VOWEL, 0.2), (Kind.PAUSE, 0.1),
             (Kind.CONSONANT, 0.1), (Kind.VOWEL, 0.2), (Kind.PAUSE, 0.1)]
    return np.concatenate([np.full(int(seconds * RATE), kind, np.uint8) for kind, seconds in parts])


def share(time_map: TimeMap, start_s: float, end_s: float) -> float:
    """Output length / input length of one input span."""
    start, end = start_s * RATE, end_s * RATE
    return (time_map.at(end) - time_map.at(start)) / (end - start)


def test_shortening_takes_pauses_first_then_vowels_then_consonants():
    kinds = labelled()
    time_map = plan_map(kinds, kinds.size, 0.5)
    assert time_map.length == kinds.size // 2
    pause, consonant, vowel = share(time_map, 0.4, 0.5), share(time_map, 0.1, 0.2), share(time_map, 0.2, 0.4)
    assert pause < 0.05 < vowel < consonant < 1, (pause, vowel, consonant)
    # The leading and trailing silence scale like vowels, so the speech span shrinks as much as the audio.
    assert share(time_map, 0.0, 0.1) == pytest.approx(vowel) == pytest.approx(share(time_map, 0.8, 0.9))


def test_lengthening_and_unlabelled_audio_are_uniform():
    kinds = labelled()
    for time_map, factor in ((plan_map(kinds, kinds.size, 2.0), 2.0), (plan_map(None, kinds.size, 0.5), 0.5)):
        assert share(time_map, 0.4, 0.5) == pytest.approx(factor) == pytest.approx(share(time_map, 0.1, 0.2))


def test_symbol_kinds_follow_the_durations_and_fill_the_audio():
    # sil, j, in1, #3 (a clause pause), eos; the audio is one frame longer than the durations say.
    kinds = symbol_kinds([1, 14, 118, 5, 218], np.array([2, 1, 3, 2, 1]), HOP, 10 * HOP)
    frames = kinds[::HOP].tolist()
    assert frames == [Kind.PAUSE] * 2 + [Kind.CONSONANT] + [Kind.VOWEL] * 3 + [Kind.PAUSE] * 4
    assert symbol_kinds([14, 118], np.array([2, 2]), HOP, 3 * HOP).size == 3 * HOP  # cut to the audio


def test_varispeed_kinds_keep_their_order_and_the_new_length():
    kinds = labelled()
    faster = resample_kinds(kinds, 1.25)
    assert abs(faster.size - kinds.size / 1.25) <= 1
    assert [int(k) for k in faster[np.r_[0, np.flatnonzero(np.diff(faster)) + 1]]] == [0, 2, 1, 0, 2, 1, 0]


def test_the_stretch_follows_the_map_and_keeps_the_length():
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal(labelled().size)).astype(np.float32)
    time_map = plan_map(labelled(), samples.size, 0.5)
    out = time_stretch(samples, 0.5, RATE, time_map)
    assert out.size == time_map.length == samples.size // 2


def test_apply_plan_maps_model_positions_through_varispeed_and_stretch():
    kinds = labelled()
    samples = np.zeros(kinds.size, np.float32) + 0.01
    plan = plan_tempo(1.0, 2.0, pitch_st=2.0)  # varispeed first, then the stretch
    out, time_map = apply_plan(samples, plan, RATE, kinds)
    assert time_map.at(kinds.size) == pytest.approx(out.size, abs=1)
    assert out.size == pytest.approx(kinds.size * plan.time_scale, rel=0.01)


@pytest.mark.parametrize("pitch_st", [-1.0, -6.0, 2.0])
def test_apply_plan_keeps_the_whole_input_at_any_pitch_level(pitch_st):
    kinds = labelled()
    samples = np.zeros(kinds.size, np.float32) + 0.01
    plan = plan_tempo(1.0, 1.0, pitch_st=pitch_st)
    out, time_map = apply_plan(samples, plan, RATE, kinds)
    assert out.size == pytest.approx(kinds.size * plan.time_scale, rel=0.01)
    assert time_map.at(kinds.size) == pytest.approx(out.size, abs=1)


def test_engine_timestamps_follow_a_pause_first_stretch(engine):
    """At speed 2.0 the comma's pause is shortened far more than the characters around it, in the audio and in
    its timestamps alike; the times still end with the audio."""
    text = "今天天气真好，适合出去散步。"
    timed = {speed: engine.synthesize_timed(text, SynthesisParams(speed=speed)) for speed in (1.0, 2.0)}
    comma = {speed: next(t for t in timings.chars if t.text == "，") for speed, (_, timings) in timed.items()}
    first = {speed: timings.chars[0] for speed, (_, timings) in timed.items()}

    def length(t):
        return t.end_s - t.start_s

    assert length(comma[2.0]) < 0.3 * length(comma[1.0]), (comma, first)
    assert length(first[2.0]) > 0.4 * length(first[1.0]), first  # positive control: speech keeps most of its time
    audio, timings = timed[2.0]
    assert timings.chars[-1].end_s == pytest.approx(len(audio) / RATE, abs=1e-4)


def test_maps_compose_with_the_breakpoints_of_both():
    first = TimeMap(np.array([0.0, 100.0, 200.0]), np.array([0.0, 50.0, 150.0]))  # halves, then keeps
    second = TimeMap(np.array([0.0, 75.0, 150.0]), np.array([0.0, 150.0, 225.0]))  # doubles, then keeps
    both = first.then(second)
    for position in (0.0, 40.0, 100.0, 125.0, 160.0, 200.0):
        assert both.at(position) == pytest.approx(second.at(first.at(position)))
    assert both.length == 225
