"""How the bundled voice's model-sized pieces are checked and put together (worker process): the truncation guard
that finds a rendering stopped mid-sound, the joins with a pause (audio, and its per-sample kinds for the time
stretch), and the output gain under a peak limit. Used by ``inference.engines.fastspeech2``.
"""

from __future__ import annotations

import numpy as np

# Gain never pushes peaks past this (the output guard rejects clipped audio).
PEAK_LIMIT = 0.95
# Truncation guard: the input ends in "sil eos", so the last TAIL_FRAMES mel frames of a clean rendering are
# silent (measured ratio 0.00-0.12 on clean endings, 0.3-1.9 on cut ones). Speech-level energy there (above
# TAIL_RATIO x the 75th percentile frame energy of the piece) means the ending was cut: the piece is re-split.
TAIL_FRAMES = 4
TAIL_RATIO = 0.25
# Cut endings are a long-input failure (none up to 128 ids, see fastspeech2.MAX_IDS), while on short pieces the
# guard misfires: the falling tone of a short greeting (你好。 再见！, 8 ids) keeps the last frames near the piece's
# 75th percentile, and 7 of 192 short renderings (neutral/sad/happy, speed 1 and 2) were re-rendered in pieces for
# nothing, with a pause inside a two-syllable word. The guard checks pieces of at least GUARD_MIN_IDS, half the
# longest input measured never to be cut (128 ids).
GUARD_MIN_IDS = 64


def ending_is_cut(audio: np.ndarray, hop: int, duration: float = 1.0) -> bool:
    """Whether the last frames still carry speech-level energy (a rendering that stopped mid-sound). The closing
    silence lasts TAIL_FRAMES at duration ratio 1 and shrinks with it (2 frames at speed 2.0), so the window does
    too: a fixed 4-frame window took the fast decay of every clean ending at speed 2 for a cut."""
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    tail = max(2, round(TAIL_FRAMES * duration))
    if len(frames) <= 2 * tail:
        return False
    energy = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    speech = float(np.percentile(energy, 75))
    return speech > 0 and float(energy[-tail:].max()) > TAIL_RATIO * speech


def join_pieces(pieces: list[np.ndarray], pause_s: float, rate: int) -> np.ndarray:
    """Pieces of one chunk (model-sized, or clauses), joined with a short pause."""
    return _with_gaps(pieces, pause_s, rate)


def join_rendered(pieces: list[tuple[np.ndarray, np.ndarray]], pause_s: float,
                  rate: int) -> tuple[np.ndarray, np.ndarray]:
    """``join_pieces`` of (audio, kinds) pairs: the pauses between them are of kind PAUSE (0, like silence)."""
    return (join_pieces([audio for audio, _ in pieces], pause_s, rate),
            _with_gaps([kinds for _, kinds in pieces], pause_s, rate))


def _with_gaps(pieces: list[np.ndarray], pause_s: float, rate: int) -> np.ndarray:
    if len(pieces) == 1:
        return pieces[0]
    gap = np.zeros(int(pause_s * rate), pieces[0].dtype)
    return np.concatenate([part for piece in pieces for part in (piece, gap)][:-1])


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db``, then pull the peak back under PEAK_LIMIT if the gain pushed it over."""
    if gain_db:
        audio = audio * np.float32(10 ** (gain_db / 20))
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > PEAK_LIMIT:
        audio = audio * np.float32(PEAK_LIMIT / peak)
    return audio
