"""Where a fast speed takes its time from: a non-uniform time map for the waveform stretch, built from the model's
own per-symbol durations, that shortens pauses first, vowels next and consonants least.

Runs in the worker process (and in-process for ``tts-ops synth``), between the vocoder and the stretch
(inference/prosody.py). Natural fast speech drops most of its pauses and shortens vowels more than consonants; a
uniform stretch instead halves every plosive burst and keeps every pause at half length. Measured on the bundled
voice at speed 2.0 (``bench/quality.py``'s 22 sentences, predicted MOS; 2026-12-07): uniform WSOLA from model
ratio 0.7 2.90; the same with pauses compressed first 3.32; plus consonants compressed less 3.33; from model ratio
0.8 with pauses nearly removed and consonants at exponent 0.3 3.47. Keeping a 40 ms floor per pause scored 3.27,
80 ms 3.02: the predictor prefers the pause gone to faster syllables around it. The leading and trailing silence
scale like vowels, so the speech itself (first to last sound) is as much shorter as the audio is (measured 0.506
of speed 1.0's at speed 2.0). Slowing down stays uniform: this map applies only to factors below 1.

Each sample of the model's output gets a ``Kind``; a segment of length ``d`` and kind exponent ``w`` becomes
``d * s ** w`` long, with the one ``s`` (found by bisection) that makes the total the wanted length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Kind(IntEnum):
    """What a stretch of the model's output is (per sample). PAUSE is 0 so that inserted silence (zeros) is one."""

    PAUSE = 0
    VOWEL = 1
    CONSONANT = 2
    EDGE = 3  # leading or trailing silence of the whole chunk


# Symbol ids of the bundled voice's mapper (baker_mapper.json) that are silence: sil, #2, #3 and eos. #0 and #1
# (inside and between words) carry the end of the syllable before them, so they count as vowels.
PAUSE_SYMBOLS = frozenset({1, 4, 5, 218})
# Initials b .. zh (ids 7-27).
CONSONANT_SYMBOLS = frozenset(range(7, 28))
# Exponent per kind (output = input * s ** exponent): measured at speed 2.0 (module docstring); pauses 20 means
# they are gone before the vowels are at half length; consonants 0.3 keeps bursts and frications nearly whole.
EXPONENTS = {Kind.PAUSE: 20.0, Kind.VOWEL: 1.0, Kind.CONSONANT: 0.3, Kind.EDGE: 1.0}
BISECTION_STEPS = 50


def symbol_kinds(ids: Sequence[int] | np.ndarray, durations: np.ndarray, hop: int, samples: int) -> np.ndarray:
    """Per-sample kinds (uint8) of one model call's output: each symbol's kind for its ``durations`` frames of
    ``hop`` samples, cut or padded (with the last symbol's kind) to ``samples``."""
    kinds = np.array([Kind.PAUSE if i in PAUSE_SYMBOLS else Kind.CONSONANT if i in CONSONANT_SYMBOLS
                      else Kind.VOWEL for i in np.asarray(ids).tolist()], np.uint8)
    per_sample = np.repeat(kinds, np.asarray(durations, np.int64).clip(0) * hop)
    if per_sample.size >= samples:
        return per_sample[:samples]
    pad = kinds[-1] if kinds.size else Kind.PAUSE
    return np.concatenate([per_sample, np.full(samples - per_sample.size, pad, np.uint8)])


@dataclass(frozen=True)
class TimeMap:
    """A piecewise-linear map from input sample positions (``source``) to output ones (``target``), increasing."""

    source: np.ndarray
    target: np.ndarray

    @classmethod
    def uniform(cls, samples: int, factor: float) -> TimeMap:
        return cls(np.array([0.0, samples]), np.array([0.0, round(samples * factor)]))

    @property
    def length(self) -> int:
        """Output length in samples."""
        return int(round(self.target[-1]))

    def at(self, position: float) -> float:
        """Output position of input ``position`` (samples)."""
        return float(np.interp(position, self.source, self.target))

    def inverse(self, position: float) -> float:
        """Input position that lands on output ``position`` (samples)."""
        return float(np.interp(position, self.target, self.source))

    def then(self, other: TimeMap) -> TimeMap:
        """This map followed by ``other`` (whose input is this map's output), with the breakpoints of both."""
        inner = other.source[(other.source > self.target[0]) & (other.source < self.target[-1])]
        source = np.union1d(self.source, np.interp(inner, self.target, self.source))
        return TimeMap(source, np.interp(np.interp(source, self.source, self.target), other.source, other.target))


def plan_map(kinds: np.ndarray | None, samples: int, factor: float) -> TimeMap:
    """The time map that makes ``samples`` of input ``factor`` times as long: by ``kinds`` when shortening, else
    (no kinds, or lengthening) uniform."""
    if kinds is None or factor >= 1 or samples == 0:
        return TimeMap.uniform(samples, factor)
    starts = np.flatnonzero(np.diff(kinds.astype(np.int16), prepend=-1))
    lengths = np.diff(np.append(starts, samples)).astype(np.float64)
    segment_kinds = kinds[starts].copy()
    for end in (0, -1):
        if segment_kinds[end] == Kind.PAUSE:
            segment_kinds[end] = Kind.EDGE
    exponents = np.array([EXPONENTS[Kind(k)] for k in segment_kinds.tolist()])
    wanted = samples * factor
    low, high = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        scale = (low + high) / 2
        low, high = (scale, high) if (lengths * scale ** exponents).sum() < wanted else (low, scale)
    out = lengths * ((low + high) / 2) ** exponents
    out *= wanted / out.sum()  # exact total: the bisection's residue spread evenly
    return TimeMap(np.concatenate([[0.0], np.cumsum(lengths)]), np.concatenate([[0.0], np.cumsum(out)]))


def resample_kinds(kinds: np.ndarray, ratio: float) -> np.ndarray:
    """``kinds`` of a signal read ``ratio`` times faster (varispeed): nearest sample."""
    if abs(ratio - 1) < 1e-3:
        return kinds
    positions = np.arange(int(np.floor((kinds.size - 1) / ratio)) + 1) * ratio
    return kinds[np.minimum(np.round(positions).astype(np.int64), kinds.size - 1)]


__all__ = ["Kind", "TimeMap", "symbol_kinds", "plan_map", "resample_kinds", "EXPONENTS"]
