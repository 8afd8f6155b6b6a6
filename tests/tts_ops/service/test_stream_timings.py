"""A stream's timestamps: chunk timings placed after the audio before them and located in the request text."""

from __future__ import annotations

import pytest

from tts_ops.service.stream_timings import StreamTimings
from tts_vocab.timings import Timing, Timings


def chunk(text: str, step: float = 0.1) -> Timings:
    chars = tuple(Timing(c, round(i * step, 4), round((i + 1) * step, 4)) for i, c in enumerate(text))
    return Timings(chars, (Timing(text, 0.0, len(text) * step),))


def test_chunks_gaps_and_the_tail_cover_the_text_once():
    text = " 你好。\n\n😀。再见！ "
    stream = StreamTimings(text)
    first = stream.add("你好。", chunk("你好。"), 0.0)
    assert first.chars[0] == Timing(" ", 0.0, 0.0)  # leading whitespace, before any sound
    second = stream.add("再见！", chunk("再见！"), 0.55)  # "😀。" was an unspeakable chunk: a silent gap
    assert second.chars[0] == Timing("\n\n😀。", 0.55, 0.55) and second.chars[1] == Timing("再", 0.55, 0.65)
    assert second.words == (Timing("再见！", 0.55, 0.85),)
    tail = stream.finish(0.85)
    assert tail.chars == (Timing(" ", 0.85, 0.85),)
    whole = stream.whole()
    assert "".join(t.text for t in whole.chars) == text and len(whole.words) == 2
    assert stream.finish(0.85).chars == ()  # nothing left


def test_a_chunk_not_in_the_text_is_an_error():
    stream = StreamTimings("你好")
    with pytest.raises(ValueError, match="not in the text"):
        stream.add("再见", chunk("再见"), 0.0)
