"""Vocoding a mel spectrogram in bounded windows, so the vocoder's memory does not grow with the input.

Runs in the worker process (and in-process for ``tts-ops synth``), called by the FastSpeech2 engine.

Why: LiteRT sizes the vocoder's buffers to the input shape and keeps them for the interpreter's life, so a worker
held memory in proportion to the longest mel it had ever vocoded: Multi-band MelGAN takes ~0.62-0.68 MiB per mel
frame (measured with ai-edge-litert 2.3 and XNNPACK, 2026-12-07), i.e. ~1.2 GiB for the decoder's 1800-frame maximum.
A mel longer than ``window_frames + 2 * context_frames`` is therefore vocoded in windows of at most that many
frames; shorter ones in one call, exactly as before.

How (overlap-save with a cross-fade): the mel is cut into ``n`` near-equal cores of at most ``window_frames``;
each core is vocoded with ``context_frames`` of the real mel on each side (none past the ends: there the vocoder
pads the way it does for an unwindowed call), the context's samples are dropped, and neighbours are cross-faded
over ``fade_frames`` centred on the seam. The generator's receptive field is about +-20 frames (24 frames of context
give bit-identical cores), but its output converges quickly. Measured on four real mels of 218-518 frames, against
the unwindowed waveform, with 128-frame windows: 8 frames of context -> 34-40 dB SNR (12 frames: 37-46 dB; cut
without context or fade: 9-18 dB), and the largest sample step near a seam 0.80-0.98 x the unwindowed one at the
same place (cut: up to 3.3 x). The output has exactly ``frames * hop_samples`` samples, as an unwindowed call.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

# Core frames per vocoder call: bounds its buffers at ~7 + 0.62 MiB x (WINDOW_FRAMES + 2 x CONTEXT_FRAMES),
# ~76 MiB. Smaller windows cost more context per frame of output: vocoder CPU time on 14 real pieces of 188-684
# frames, against unwindowed: 192/8 +3%, 160/8 +6%, 128/8 +8%, 192/12 +7%, 128/12 +12% (window/context frames).
# 112 rather than 192 for issue 11's "a zygote-forked worker's USS <= 150 MiB after any input": measured on a real
# forked worker (2026-12-07) after 200- and 1,000-character texts and 40 mixed ones (speeds 0.5-2.0), USS peaked
# at 146 MiB with 112, 167 with 128 and ~185 with 192. The price: whole-synthesis CPU RTF +3-5% on 50-1,000
# characters and +11% on a 10-character text (bench/engine.py, 192 and 112 run side by side; bench/RESULTS.md).
WINDOW_FRAMES = 112
# Real mel frames each side of a core (not part of the output).
CONTEXT_FRAMES = 8
# Frames over which neighbouring windows are cross-faded (centred on the seam; at most 2 x CONTEXT_FRAMES).
FADE_FRAMES = 4


class MelVocoder(Protocol):
    """A vocoder call on one mel array of shape (1, frames, bins), returning ``frames * hop`` float32 samples."""

    def __call__(self, mel: np.ndarray) -> np.ndarray: ...


def plan_windows(frames: int, window_frames: int = WINDOW_FRAMES,
                 context_frames: int = CONTEXT_FRAMES) -> list[tuple[int, int]]:
    """The cores ``(start, stop)`` that cover ``range(frames)``: one when it fits a call with its context, else
    ``ceil(frames / window_frames)`` of near-equal length (no short last window to waste a call on)."""
    if frames <= window_frames + 2 * context_frames:
        return [(0, frames)]
    count = -(-frames // window_frames)
    bounds = [index * frames // count for index in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def vocode_windowed(vocode: MelVocoder, mel: np.ndarray, hop_samples: int, *, window_frames: int = WINDOW_FRAMES,
                    context_frames: int = CONTEXT_FRAMES, fade_frames: int = FADE_FRAMES) -> np.ndarray:
    """``vocode(mel)`` computed in windows of at most ``window_frames + 2 * context_frames`` frames."""
    frames = mel.shape[1]
    cores = plan_windows(frames, window_frames, context_frames)
    if len(cores) == 1:
        return vocode(mel)
    half_fade = min(fade_frames // 2, context_frames)
    out = np.zeros(frames * hop_samples, np.float32)
    for index, (start, stop) in enumerate(cores):
        # Samples this window contributes: its core, plus half the fade into each neighbour's core.
        keep_start = start - half_fade if index else 0
        keep_stop = stop + half_fade if index < len(cores) - 1 else frames
        first = max(0, start - context_frames)
        last = min(frames, stop + context_frames)
        audio = vocode(np.ascontiguousarray(mel[:, first:last]))
        piece = audio[(keep_start - first) * hop_samples:(keep_stop - first) * hop_samples]
        out[keep_start * hop_samples:keep_stop * hop_samples] += piece * _fade_weights(
            len(piece), half_fade * hop_samples, fade_in=index > 0, fade_out=index < len(cores) - 1)
    return out


def _fade_weights(length: int, ramp: int, *, fade_in: bool, fade_out: bool) -> np.ndarray:
    """Ones, with a raised-cosine ramp of ``2 * ramp`` samples at each faded end; a fade-out and the next
    window's fade-in sum to exactly one."""
    weights = np.ones(length, np.float32)
    if ramp:
        rise = (0.5 - 0.5 * np.cos(np.pi * (np.arange(2 * ramp) + 0.5) / (2 * ramp))).astype(np.float32)
        if fade_in:
            weights[:2 * ramp] = rise
        if fade_out:
            weights[-2 * ramp:] = rise[::-1]
    return weights


__all__ = ["CONTEXT_FRAMES", "FADE_FRAMES", "WINDOW_FRAMES", "MelVocoder", "plan_windows", "vocode_windowed"]
