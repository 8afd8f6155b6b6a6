"""Vocoder speed-ups (inference.engines.vocoder_accel) on a small real torch vocoder with HiFi-GAN's interface:
eager, torch.jit and ONNX Runtime give the same audio within a tolerance, for lengths other than the one used to
trace/export; the Sambert engine swaps the module its model exposes and runs under inference mode."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.engines.base import SynthesisParams
from inference.engines.sambert import SambertEngine
from inference.engines.vocoder_accel import accelerate, find_vocoders, replace_vocoders
from tests.fakes.tiny_vocoder import HOP, VocodingPipeline, tiny_vocoder

TOLERANCE = 1e-4  # float32 through different kernels; the audio is in [-1, 1]


@pytest.mark.parametrize("mode", ["jit", "onnx"])
def test_accelerated_vocoder_matches_eager(mode):
    eager = tiny_vocoder()
    fast = accelerate(tiny_vocoder(), mode)
    assert fast is not eager
    with torch.inference_mode():
        for frames in (8, 64, 301):  # the example is 64 frames: the time axis must stay dynamic
            mel = torch.randn(1, 80, frames)
            expected, got = eager(mel), fast(mel)
            assert got.shape == expected.shape == (1, 1, frames * HOP)
            assert float((got - expected).abs().max()) < TOLERANCE
            assert float(expected.abs().max()) > 0.01  # a real signal, not zeros agreeing with zeros


def test_eager_mode_keeps_the_module():
    module = tiny_vocoder()
    assert accelerate(module, "eager") is module


def synthesize(model_dir: Path, vocoder: str) -> tuple[np.ndarray, VocodingPipeline]:
    made: list[VocodingPipeline] = []

    def factory(directory: str) -> VocodingPipeline:
        made.append(VocodingPipeline(directory))
        return made[-1]

    engine = SambertEngine(model_dir=model_dir, vocoder=vocoder, pipeline_factory=factory)
    engine.load()
    samples = engine.synthesize_chunk("今天天气真好。", SynthesisParams(emotion="neutral", speed=1.0))
    return samples, made[0]


@pytest.mark.parametrize("mode", ["jit", "onnx"])
def test_sambert_engine_runs_the_exposed_vocoder_accelerated(model_dir, mode):
    eager, eager_pipeline = synthesize(model_dir, "eager")
    fast, pipeline = synthesize(model_dir, mode)
    module = pipeline.model.voices["zhitian_emo"].voc_model
    assert type(module).__name__ != "TinyVocoder"  # replaced in place
    assert eager.shape == fast.shape and float(np.abs(fast - eager).max()) < TOLERANCE
    assert not pipeline.grad_seen and not eager_pipeline.grad_seen  # every call under inference mode


def test_a_model_without_an_exposed_vocoder_runs_as_shipped(caplog):
    caplog.set_level(logging.WARNING)

    class Opaque:
        model = None

    assert find_vocoders(Opaque()) == []
    assert replace_vocoders(Opaque(), "jit") == 0
    assert "exposes no vocoder module" in caplog.text
