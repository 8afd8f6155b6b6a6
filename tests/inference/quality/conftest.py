"""The real Distill-MOS model (loaded once per session) and real audio from the bundled voice."""

from __future__ import annotations

import numpy as np
import pytest

SENTENCE = "我们明天上午九点在公司门口集合，请大家准时到达。"


@pytest.fixture(scope="session")
def mos_scorer():
    from inference.quality import MosScorer

    return MosScorer(threads=2).load()


@pytest.fixture(scope="session")
def synthesized(engine) -> tuple[np.ndarray, int]:
    from inference.engines.base import SynthesisParams

    return engine.synthesize(SENTENCE, SynthesisParams()), engine.info().sample_rate


@pytest.fixture(scope="session")
def damaged(synthesized) -> np.ndarray:
    """The same speech with white noise at about 10 dB SNR, then driven 8x into hard clipping."""
    samples, _ = synthesized
    rms = float(np.sqrt(np.mean(samples ** 2)))
    noisy = samples + np.random.default_rng(7).normal(0.0, rms / 3, samples.size)
    return (np.clip(noisy * 8, -1.0, 1.0) * 0.9).astype(np.float32)
