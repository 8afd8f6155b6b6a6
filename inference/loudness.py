"""Loudness normalisation of synthesised speech to a target integrated loudness (ITU-R BS.1770-4, LUFS).

Runs in the worker process, on its inference thread, after the engine and before encoding (``audio.loudness_lufs``
in the daemon's config; ``--loudness-lufs`` on the worker's command line), so that an emotion preset, a speed or a
voice never makes one answer much louder or quieter than the next. Emotion presets keep their own ``gain_db`` for
the engine's direct users; in the service this step decides the final level.

Two cases the meter alone gets wrong:

- audio shorter than one BS.1770 gating block (0.4 s; a short chunk of a stream, "好。") cannot be measured by
  pyloudnorm at all: it is measured as a seamless repetition of itself filling one block, which has the same mean
  square and so the same loudness;
- the gain that reaches the target may push peaks past full scale: samples above ``KNEE`` (-3 dBFS) are bent
  smoothly (tanh) towards ``CEILING`` (-1 dBFS, reached only in float rounding) instead of being clipped hard.
  Speech has few such peaks, so the loudness stays within a fraction of a dB of the target.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pyloudnorm

# BS.1770's gating block: pyloudnorm refuses anything shorter.
BLOCK_S = 0.4
KNEE = 10 ** (-3 / 20)
CEILING = 10 ** (-1 / 20)
# Below this the absolute gate (-70 LUFS) drops every block: the audio is silence, not something to amplify.
MIN_MEASURABLE_LUFS = -70.0


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """Integrated loudness of mono float samples in LUFS (-inf for silence); audio shorter than one gating block
    is measured as its own repetition (see the module docstring)."""
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    block = int(math.ceil(BLOCK_S * rate)) + 1
    if samples.size == 0:
        return -math.inf
    if samples.size < block:
        samples = np.resize(samples, block)
    return float(_meter(rate).integrated_loudness(samples))


def normalize_loudness(samples: np.ndarray, rate: int, target_lufs: float) -> np.ndarray:
    """``samples`` (float32 mono) scaled to ``target_lufs`` with peaks bent under -1 dBFS; silence and audio the
    meter cannot measure come back unchanged."""
    measured = integrated_loudness(samples, rate)
    if not math.isfinite(measured) or measured < MIN_MEASURABLE_LUFS:
        return np.asarray(samples, dtype=np.float32)
    gain = 10 ** ((target_lufs - measured) / 20)
    return limit_peaks(np.asarray(samples, dtype=np.float32) * np.float32(gain))


def limit_peaks(samples: np.ndarray) -> np.ndarray:
    """Samples above ``KNEE`` in magnitude bent towards ``CEILING`` (never above it); the rest untouched."""
    magnitude = np.abs(samples)
    over = magnitude > KNEE
    if not over.any():
        return samples
    out = samples.copy()
    span = CEILING - KNEE
    bent = KNEE + span * np.tanh((magnitude[over] - KNEE) / span)
    out[over] = np.sign(samples[over]) * bent
    return out


@functools.lru_cache(maxsize=8)
def _meter(rate: int) -> Any:
    # One meter per rate: its K-weighting filters are designed for that rate.
    return pyloudnorm.Meter(rate)
