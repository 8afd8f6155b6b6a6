"""No synthesized chunk ends mid-sound: 36 unpunctuated sentences of 40-80 characters through the real engine.

Every model call's output is checked, not only the chunk's: a chunk too long for one call is rendered in pieces
(``pieces.join_pieces``), and a piece that stopped early would lose a syllable mid-sentence. Measured when
this test was written (``tests/inference/long_sentences.tail_ratio``): with the per-call id cap and the truncation
guard every ending was at most 0.16; without them (one model call per chunk, no guard) 21 of the 36 chunks ended
at 0.33-1.38, i.e. mid-syllable.
"""

from __future__ import annotations

import numpy as np
import pytest

import inference.engines.pieces as pieces_module
from inference.engines.base import SynthesisParams
from tests.inference.long_sentences import SENTENCES, tail_ratio

CUT = 0.3  # between the clean endings (<= 0.16) and the cut ones (>= 0.33) measured above


def test_the_table_has_enough_long_unpunctuated_sentences():
    assert len(SENTENCES) >= 30 and all(40 <= len(s) <= 80 for s in SENTENCES)
    assert not any(ch in s for s in SENTENCES for ch in "，。、！？；：,.!?;:")


@pytest.mark.parametrize("speed", [1.0, 2.0])  # 2.0: the shortest durations, where endings broke first
def test_no_model_call_ends_mid_sound(engine, monkeypatch, speed):
    pieces: list[np.ndarray] = []
    join = pieces_module.join_pieces

    def recording_join(parts: list[np.ndarray], *pause_s: float) -> np.ndarray:
        pieces.extend(parts)
        return join(parts, *pause_s)

    monkeypatch.setattr(pieces_module, "join_pieces", recording_join)
    params = SynthesisParams.build("neutral", speed)
    cut = {}
    for text in SENTENCES:
        pieces.clear()
        chunk = engine.synthesize_chunk(text, params)
        ratios = [tail_ratio(chunk)] + [tail_ratio(piece) for piece in pieces]
        if max(ratios) >= CUT:
            cut[text] = [round(r, 2) for r in ratios]
    assert not cut, f"{len(cut)} of {len(SENTENCES)} chunks have an ending at speech level (chunk, pieces): {cut}"


@pytest.mark.parametrize("emotion", ["neutral", "happy", "sad"])
@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_short_texts_are_rendered_whole(engine, monkeypatch, emotion, speed):
    """A short text is one model call: the guard once took the falling tone of 你好。 or 再见！ for a cut ending and
    rendered the two syllables apart, with a pause between them."""
    calls: list[int] = []
    to_mel = engine._text_to_mel
    monkeypatch.setattr(engine, "_text_to_mel", lambda ids, *rest: (calls.append(len(ids)), to_mel(ids, *rest))[1])
    for text in ("你好。", "再见！", "谢谢。", "早上好！", "对。"):
        calls.clear()
        engine.synthesize(text, SynthesisParams.build(emotion, speed))
        assert len(calls) == 1, (text, calls)
