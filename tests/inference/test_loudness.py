"""Loudness normalisation (inference.loudness): every answer of a worker started with ``--loudness-lufs`` sits at
the target whatever the emotion or speed, short audio is measurable, and peaks stay under full scale."""

from __future__ import annotations

import numpy as np
import pytest

from inference.loudness import CEILING, integrated_loudness, limit_peaks, normalize_loudness
from tests.inference.test_worker import decode, ready_worker

TARGET = -16.0
SENTENCE = "今天天气很好，我们一起去公园散步吧。"


@pytest.fixture(scope="module")
def leveled_worker(model_store_dir):
    with ready_worker(model_store_dir, "--loudness-lufs", str(TARGET)) as proc:
        yield proc


@pytest.mark.parametrize(("emotion", "speed"), [("neutral", 1.0), ("neutral", 0.5), ("neutral", 2.0),
                                                ("angry", 1.0), ("sad", 0.75), ("happy", 1.5), ("fear", 1.0)])
def test_every_answer_is_within_1_db_of_the_target(leveled_worker, emotion, speed):
    reply = leveled_worker.synthesize({"text": SENTENCE, "format": "wav", "emotion": emotion, "speed": speed})
    assert reply.status == 200, reply.body[:500]
    samples, rate = decode(reply, "wav")
    assert abs(integrated_loudness(samples, rate) - TARGET) <= 1.0
    assert np.abs(samples).max() < 1.0  # the peak limit: nothing at full scale


def test_a_short_stream_chunk_is_leveled_too(leveled_worker):
    reply = leveled_worker.synthesize({"text": "好。", "format": "wav", "chunk": True})
    assert reply.status == 200, reply.body[:500]
    samples, rate = decode(reply, "wav")
    assert abs(integrated_loudness(samples, rate) - TARGET) <= 1.0


def test_without_the_option_the_engine_level_differs_by_emotion(engine):
    # Positive control for the test above: the presets alone change the level by more than the 1 dB allowed.
    from inference.engines.base import SynthesisParams

    rate = engine.info().sample_rate
    levels = [integrated_loudness(engine.synthesize(SENTENCE, SynthesisParams.build(e, s, None)), rate)
              for e, s in (("neutral", 1.0), ("angry", 1.0), ("neutral", 2.0), ("sad", 0.75))]
    assert max(levels) - min(levels) > 1.0


def test_audio_shorter_than_a_gating_block_is_measured():
    rate = 16000
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(rate // 10) / rate)).astype(np.float32)  # 0.1 s
    assert abs(integrated_loudness(normalize_loudness(tone, rate, TARGET), rate) - TARGET) < 0.1


def test_silence_is_left_alone_and_peaks_are_bent_under_the_ceiling():
    silence = np.zeros(16000, dtype=np.float32)
    assert not normalize_loudness(silence, 16000, TARGET).any()
    loud = np.array([0.1, 0.95, -1.5, 3.0], dtype=np.float32)
    limited = limit_peaks(loud)
    assert limited[0] == loud[0]  # under the knee: untouched
    assert np.all(np.abs(limited) <= CEILING) and np.all(np.sign(limited) == np.sign(loud))
