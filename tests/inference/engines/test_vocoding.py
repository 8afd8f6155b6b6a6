"""Windowed vocoding (inference/engines/vocoding.py) on the real Multi-band MelGAN: windows join without a seam,
the audio matches the unwindowed vocoding, and the length is exactly the unwindowed length.

Mels come from the real acoustic model on sentences of the benchmark paragraph; the vocoder is deterministic, so
the windowed and the unwindowed waveform of one mel can be compared sample by sample.
"""

from __future__ import annotations

import numpy as np
import pytest

from inference.engines.fastspeech2 import HOP_SAMPLES
from inference.engines.vocoding import CONTEXT_FRAMES, WINDOW_FRAMES, plan_windows, vocode_windowed
from inference.text.samples import PARAGRAPH

# Largest sample step within a frame of a seam, relative to the unwindowed waveform's at the same place, plus a
# floor for seams in silence (where the unwindowed waveform may not move at all).
SEAM_STEP_RATIO = 1.2
SEAM_STEP_FLOOR = 0.002
# Windowed vs unwindowed waveform (measured 34-40 dB with 128-frame windows; a cut without context or fade: 9-18 dB).
MIN_SNR_DB = 30.0


@pytest.mark.parametrize("frames", [1, 50, WINDOW_FRAMES + 2 * CONTEXT_FRAMES, WINDOW_FRAMES + 2 * CONTEXT_FRAMES + 1,
                                    659, 1800])
def test_windows_cover_every_frame_once_within_the_bound(frames):
    cores = plan_windows(frames)
    assert cores[0][0] == 0 and cores[-1][1] == frames
    assert all(stop == start for (_, stop), (start, _) in zip(cores, cores[1:], strict=False))
    if frames <= WINDOW_FRAMES + 2 * CONTEXT_FRAMES:
        assert cores == [(0, frames)]
    else:
        sizes = [stop - start for start, stop in cores]
        assert max(sizes) <= WINDOW_FRAMES and max(sizes) - min(sizes) <= 1


@pytest.fixture(scope="module")
def mels(engine) -> list[np.ndarray]:
    """Mels of four sentences, each long enough to need two to five windows."""
    chunks = engine._frontend.encode(PARAGRAPH, max_chars=60)
    found = [mel for mel in (engine._text_to_mel(chunk.ids, 1.0, 1.0, 1.0) for chunk in chunks)
             if mel.shape[1] > WINDOW_FRAMES + 2 * CONTEXT_FRAMES][:4]
    assert len(found) == 4, "the paragraph should give four mels longer than one window"
    return found


def seam_step(audio: np.ndarray, seams: list[int]) -> float:
    """The largest step between neighbouring samples within one frame of any seam."""
    return max(float(np.abs(np.diff(audio[s * HOP_SAMPLES - HOP_SAMPLES:s * HOP_SAMPLES + HOP_SAMPLES])).max())
               for s in seams)


def snr_db(audio: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / np.sum((audio - reference) ** 2.0)))


def compare(engine, mel: np.ndarray, **windowing: int) -> tuple[bool, float, int, int]:
    """(seams smooth, SNR dB, windowed length, unwindowed length) of one mel."""
    whole = engine._vocode(mel)
    windowed = vocode_windowed(engine._vocode, mel, HOP_SAMPLES, **windowing)
    seams = [start for start, _ in plan_windows(mel.shape[1])[1:]]
    smooth = seam_step(windowed, seams) <= SEAM_STEP_RATIO * seam_step(whole, seams) + SEAM_STEP_FLOOR
    return smooth, snr_db(windowed, whole), len(windowed), len(whole)


def test_windowed_vocoding_joins_without_a_seam_and_matches_the_unwindowed_audio(engine, mels):
    for mel in mels:
        smooth, snr, length, whole_length = compare(engine, mel)
        assert length == whole_length == mel.shape[1] * HOP_SAMPLES
        assert smooth, f"a seam steps more than the unwindowed audio there ({mel.shape[1]} frames)"
        assert snr >= MIN_SNR_DB, f"windowed audio {snr:.1f} dB from the unwindowed one ({mel.shape[1]} frames)"


def test_positive_control_windows_cut_without_context_or_fade_show_their_seams(engine, mels):
    results = [compare(engine, mel, context_frames=0, fade_frames=0) for mel in mels]
    assert not all(smooth for smooth, *_ in results)
    assert min(snr for _, snr, *_ in results) < MIN_SNR_DB


def test_engine_vocodes_long_mels_in_windows_of_bounded_shape(engine, mels, monkeypatch):
    shapes: list[tuple[int, ...]] = []
    vocode = engine._vocode

    def spy(mel: np.ndarray) -> np.ndarray:
        shapes.append(mel.shape)
        return vocode(mel)

    monkeypatch.setattr(engine, "_vocode", spy)
    longest = max(mels, key=lambda mel: mel.shape[1])
    audio = engine._mel_to_audio(longest)
    assert len(audio) == longest.shape[1] * HOP_SAMPLES
    assert len(shapes) > 1 and max(shape[1] for shape in shapes) <= WINDOW_FRAMES + 2 * CONTEXT_FRAMES
