"""Waveform prosody for the bundled voice: the split of a tempo between the model and a pitch-preserving time
stretch, the stretch itself (WSOLA), pitch level by varispeed, a sentence-final pitch rise, a pitch slope over the
utterance, an energy tilt and a brightness (voice-quality) shelf: the emotion presets' contours.

Runs in the worker process (and in-process for ``tts-ops synth``), after the vocoder. FastSpeech2 takes only
utterance-wide ratios (duration, normalised pitch range, energy), so what an emotion or a speed needs beyond them
is done here on the waveform. Measured on the bundled voice (``bench/quality.py``, README "Speech quality"): the
model's duration ratio sounds natural in MODEL_DURATION_RANGE and degrades fast outside it (predicted MOS 3.0 at
ratio 0.6 and 2.3 at 0.5 on the same sentences), so a speed beyond that range is reached by stretching.

A shortening stretch is not uniform: it follows a time map (inference/tempo_map.py) that takes the time from
pauses first, then vowels, consonants least, built from the model's per-symbol durations.

Timestamps: every time measured on the model's output (its per-phoneme durations) maps to the delivered audio by
the map ``apply_plan`` returns (for a uniform stretch, ``TempoPlan.time_scale``) followed by the one ``shape``
returns: the pitch slope and the final rise are varispeed, which moves times (by up to 83 ms inside a 3 s chunk at
4 semitones of slope; the surprise preset's 12-semitone rise squeezes its last 0.5 s into ~0.35 s). Silences
the engine inserts between pieces or clauses (a preset's pause_s) come before the plan is applied and are pauses to
the map, but they are not in the model's durations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfiltfilt

from inference.tempo_map import TimeMap, plan_map, resample_kinds

# The model's duration ratio stays inside this range; the rest of a tempo change is a pitch-preserving stretch.
# Lower bound 0.8 since the stretch shortens pauses and vowels first (inference/tempo_map.py): at speed 2.0 model
# 0.7 / 0.75 / 0.8 / 0.9 / 1.0 scored 3.38 / 3.47 / 3.42 / 3.24 / 3.28, at speed 1.5 0.7 / 0.8 3.66 / 3.87.
MODEL_DURATION_RANGE = (0.8, 1.4)
# The model speaks more quietly at short duration ratios (phonemes lose frames); measured mean integrated loudness
# change vs ratio 1.0 over 11 sentences (2026-12-07): 0.6 -1.5 dB, 0.7 -0.8, 0.8 -0.4, 0.9 -0.2, 1.2 and 1.4 0.0.
# The plan gives that back, so a fast speed is not quieter (whether or not outputs are loudness-normalised later).
MODEL_LOUDNESS_DB = ((0.6, -1.5), (0.7, -0.8), (0.8, -0.4), (0.9, -0.2), (1.0, 0.0))
# The rise covers the last voiced stretch of this length (about the closing two syllables), linearly.
FINAL_RISE_S = 0.5
# WSOLA: 25 ms Hann frames at 50% overlap, each aligned within +-8 ms. Measured at speed 2.0 on 11 sentences
# (predicted MOS): 15 ms 2.93, 20 ms 3.01, 25 ms 3.07, 30 ms 2.95, 40 ms 2.89, 60 ms 2.90; at speed 0.5 25 ms was
# best too (3.96 vs 3.83 for 40 ms). A phase vocoder (librosa's) scored 0.3-1.0 lower: it sounds reverberant.
WSOLA_FRAME_S = 0.025
# Voice quality: the spectral balance above this frequency is raised (a tense, pressed voice) or lowered (a lax,
# breathy one) by a zero-phase shelf; 1 kHz is where the eGeMAPS alpha ratio splits low from high energy.
BRIGHT_SPLIT_HZ = 1000.0
# Breakpoints of the pitch slope's time map: 10 ms at 24 kHz, far finer than the ~1 ms of drift per 10 ms it
# can add (0.7% per semitone at 4 semitones is ~3%), so timestamps follow it to a sample or two.
SLOPE_MAP_STEP = 240
WSOLA_TOLERANCE_S = 0.008


@dataclass(frozen=True)
class TempoPlan:
    """How one synthesis reaches its tempo and pitch level.

    ``model_duration`` goes to FastSpeech2's ``speed_ratios``; the vocoder's output is then read ``pitch`` times
    faster (varispeed: pitch up, shorter), then stretched by ``stretch`` (output length / input length, pitch kept).
    ``time_scale`` maps a time on the model's output to the delivered audio (the stretch factor to apply to
    timestamps derived from the model's durations).
    """

    model_duration: float
    pitch: float
    stretch: float

    @property
    def time_scale(self) -> float:
        return self.stretch / self.pitch

    @property
    def gain_db(self) -> float:
        """Gain that makes up for the model's quieter rendering at a short duration ratio (MODEL_LOUDNESS_DB)."""
        ratios, loss = zip(*MODEL_LOUDNESS_DB, strict=True)
        return -float(np.interp(self.model_duration, ratios, loss))


def plan_tempo(duration_ratio: float, speed: float, pitch_st: float = 0.0) -> TempoPlan:
    """Split the wanted duration factor (``duration_ratio / speed``) between the model, kept inside
    MODEL_DURATION_RANGE, and a stretch; a pitch level of ``pitch_st`` semitones is rendered by asking the model
    for ``pitch`` times longer speech and reading it ``pitch`` times faster."""
    wanted = duration_ratio / speed
    model = float(np.clip(wanted, *MODEL_DURATION_RANGE))
    pitch = float(2 ** (pitch_st / 12))
    return TempoPlan(model_duration=model * pitch, pitch=pitch, stretch=wanted / model)


def apply_plan(samples: np.ndarray, plan: TempoPlan, rate: int,
               kinds: np.ndarray | None = None) -> tuple[np.ndarray, TimeMap]:
    """The model's output turned into the planned pitch level, tempo and loudness (peaks are the caller's: the
    engine's gain stage limits them), and the map from positions in the model's output to the result's.
    ``kinds`` (inference/tempo_map.py, per sample) lets a shortening stretch take its time from pauses first."""
    size = samples.size
    if abs(plan.pitch - 1) > 1e-3:
        samples = varispeed(samples, plan.pitch)
        kinds = None if kinds is None else resample_kinds(kinds, plan.pitch)
    if plan.gain_db:
        samples = samples * np.float32(10 ** (plan.gain_db / 20))
    time_map = plan_map(kinds, samples.size, plan.stretch)
    out = time_stretch(samples, plan.stretch, rate, time_map)
    # Model positions -> varispeed positions (x size read in samples.size) -> stretched ones.
    scale = samples.size / size if size else 1.0
    return out, TimeMap(time_map.source / scale, time_map.target)


def time_stretch(samples: np.ndarray, factor: float, rate: int, time_map: TimeMap | None = None) -> np.ndarray:
    """Pitch-preserving duration change by WSOLA: output length = ``factor`` x input length (2.0 = twice as long),
    or ``time_map.length`` following that map (which input position each output position comes from). Each output
    frame is taken near its nominal input position where it best continues the previous one, so the periods line up
    and pitch and loudness are kept."""
    if abs(factor - 1) < 1e-3 or samples.size == 0:
        return samples
    time_map = time_map or TimeMap.uniform(samples.size, factor)
    frame = int(WSOLA_FRAME_S * rate) // 2 * 2
    hop, tolerance = frame // 2, int(WSOLA_TOLERANCE_S * rate)
    window = np.hanning(frame).astype(np.float32)
    n_out = time_map.length
    out = np.zeros(n_out + frame, np.float32)
    norm = np.zeros_like(out)
    padded = np.concatenate([np.asarray(samples, np.float32), np.zeros(frame + 2 * tolerance + hop, np.float32)])
    previous = 0
    for k in range(-(-n_out // hop)):
        pos = 0
        if k:
            follow = padded[previous + hop:previous + hop + frame]
            low = max(0, int(time_map.inverse(k * hop)) - tolerance)
            region = padded[low:low + 2 * tolerance + frame]
            pos = low + int(np.argmax(np.correlate(region, follow, mode="valid")))
        out[k * hop:k * hop + frame] += padded[pos:pos + frame] * window
        norm[k * hop:k * hop + frame] += window
        previous = pos
    norm[norm < 1e-3] = 1.0
    return (out / norm)[:n_out]


def varispeed(samples: np.ndarray, ratio: np.ndarray | float) -> np.ndarray:
    """Read the input ``ratio`` times faster (pitch up by ``ratio``, duration down by it; a ratio below 1 lowers the
    pitch and lengthens), by linear interpolation; ``ratio`` may be an array giving the rate at each input sample.
    Every input sample is read: the output ends where the input does."""
    if samples.size < 2:
        return samples.astype(np.float32)
    landing = varispeed_landing(samples.size, ratio)
    positions = np.interp(np.arange(int(landing[-1]) + 1), landing, np.arange(samples.size, dtype=np.float64))
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)


def varispeed_landing(samples: int, ratio: np.ndarray | float) -> np.ndarray:
    """The output position (fractional samples) where ``varispeed`` puts each of ``samples`` input samples: a
    sample read at rate r advances the output by 1/r."""
    step = 1.0 / np.broadcast_to(np.asarray(ratio, np.float64), (samples,))
    return np.concatenate([[0.0], np.cumsum(step[:-1])])


def final_rise(samples: np.ndarray, semitones: float, rate: int) -> np.ndarray:
    """A glide up of ``semitones`` over the last voiced FINAL_RISE_S (trailing silence left alone), as in a
    surprised question."""
    if not semitones or samples.size == 0:
        return samples
    start, end = _rise_span(samples, rate)
    ramp = _rise_ramp(end - start, semitones)
    return np.concatenate([samples[:start], varispeed(samples[start:end], ramp), samples[end:]])


def final_rise_map(samples: np.ndarray, semitones: float, rate: int) -> TimeMap:
    """Where ``final_rise`` puts each input position (the rise reads its stretch faster, so it is shorter and what
    follows moves earlier); the identity for no rise."""
    if not semitones or samples.size < 2:
        return TimeMap.uniform(samples.size, 1.0)
    start, end = _rise_span(samples, rate)
    if end - start < 2:
        return TimeMap.uniform(samples.size, 1.0)
    landing = varispeed_landing(end - start, _rise_ramp(end - start, semitones))
    inner = np.append(np.arange(0, end - start - 1, SLOPE_MAP_STEP), end - start - 1)
    rendered = int(landing[-1]) + 1  # what varispeed returns for the span
    source = np.concatenate([[0.0] if start else [], start + inner, [end, samples.size]])
    target = np.concatenate([[0.0] if start else [], start + landing[inner],
                             [start + rendered, samples.size - end + start + rendered]])
    return TimeMap(source.astype(np.float64), target)


def _rise_span(samples: np.ndarray, rate: int) -> tuple[int, int]:
    env = np.abs(samples)
    active = np.flatnonzero(env > 0.02 * env.max())
    end = int(active[-1]) + 1 if active.size else samples.size
    return max(0, end - int(FINAL_RISE_S * rate)), end


def _rise_ramp(samples: int, semitones: float) -> np.ndarray:
    return 2 ** (semitones / 12 * np.linspace(0, 1, samples))


def pitch_slope(samples: np.ndarray, semitones: float) -> np.ndarray:
    """A pitch glide over the whole chunk, ``semitones`` from start to end (negative: a falling, declining
    contour, as in a sad voice; positive: a rising one), centred on the chunk's own level so the median pitch
    stays about where it was. By varispeed: the start is read slower than the end (or the reverse), so times in
    the middle move by up to ~0.7% of the chunk's length per semitone (``pitch_slope_map`` says where); the total
    length changes by 0.13% at 3 semitones."""
    if not semitones or samples.size == 0:
        return samples
    return varispeed(samples, _slope_ratio(samples.size, semitones))


def pitch_slope_map(samples: int, semitones: float) -> TimeMap:
    """Where ``pitch_slope`` puts each input position of a chunk of ``samples`` (so that timestamps follow it),
    with a breakpoint every SLOPE_MAP_STEP input samples; the identity for no slope."""
    if not semitones or samples < 2:
        return TimeMap.uniform(samples, 1.0)
    landing = varispeed_landing(samples, _slope_ratio(samples, semitones))
    source = np.append(np.arange(0, samples - 1, SLOPE_MAP_STEP), samples - 1)
    return TimeMap(source.astype(np.float64), landing[source])


def _slope_ratio(samples: int, semitones: float) -> np.ndarray:
    return 2 ** (semitones / 12 * np.linspace(-0.5, 0.5, samples))


def brightness(samples: np.ndarray, bright_db: float, rate: int) -> np.ndarray:
    """The energy above BRIGHT_SPLIT_HZ changed by about ``bright_db`` against the energy below it (a high shelf:
    the dry signal plus a scaled zero-phase high-pass, so the response rises monotonically and no phase moves)."""
    if not bright_db or samples.size == 0:
        return samples
    sos = butter(2, BRIGHT_SPLIT_HZ, btype="highpass", fs=rate, output="sos")
    high = sosfiltfilt(sos, samples, padlen=min(samples.size - 1, 3 * 2 * sos.shape[0]))
    return (samples + (10 ** (bright_db / 20) - 1) * high).astype(np.float32)


def energy_tilt(samples: np.ndarray, tilt_db: float) -> np.ndarray:
    """A gain sloping linearly in dB from ``-tilt_db / 2`` at the start to ``+tilt_db / 2`` at the end (a sad
    voice fades; an angry one does not), loudness on the whole about unchanged."""
    if not tilt_db or samples.size == 0:
        return samples
    gain = 10 ** (np.linspace(-tilt_db / 2, tilt_db / 2, samples.size) / 20)
    return (samples * gain).astype(np.float32)


def shape(samples: np.ndarray, preset: Mapping[str, float], rate: int) -> tuple[np.ndarray, TimeMap]:
    """The preset's contour effects on a rendered chunk (after apply_plan): energy tilt, brightness, pitch slope,
    then the final rise (last, so it starts from the sloped ending); and the map of positions before them to
    positions after (the slope and the rise move times, so timestamps follow it)."""
    samples = brightness(energy_tilt(samples, preset.get("tilt_db", 0.0)), preset.get("bright_db", 0.0), rate)
    slope, rise = preset.get("slope_st", 0.0), preset.get("rise_st", 0.0)
    time_map = pitch_slope_map(samples.size, slope)
    samples = pitch_slope(samples, slope)
    time_map = time_map.then(final_rise_map(samples, rise, rate))
    return final_rise(samples, rise, rate), time_map


__all__ = ["MODEL_DURATION_RANGE", "TempoPlan", "plan_tempo", "apply_plan", "time_stretch", "varispeed",
           "varispeed_landing", "final_rise", "final_rise_map", "pitch_slope", "pitch_slope_map", "brightness",
           "energy_tilt", "shape"]
