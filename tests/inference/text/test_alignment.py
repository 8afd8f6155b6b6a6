"""Timestamps inside the worker: the G2P's symbol owners, ``align_piece`` (durations -> source characters),
``Timeline`` (pieces, pauses, gaps) and ``words``; then the real engine, whose timings must add up to its audio."""

from __future__ import annotations

import pytest

from inference.engines.base import SynthesisParams
from inference.text.alignment import Segment, Timeline, align_piece, words
from tts_vocab.timings import Timing

HOP = 300
RATE = 24000


def owned_text(chunk, segments) -> dict[str, tuple[int, int]]:
    return {chunk.text[s.start:s.end]: (s.t0, s.t1) for s in segments}


@pytest.mark.parametrize("text", ["今天天气真好，2024年3.5%。", "花儿开了，他说OK！", "ＡＢ１２，COVID-19很严重。",
                                  "“你好” 😀 再见", "1,000人参加了会议，约1/3的人提前离开。"])
def test_every_symbol_has_an_owner_inside_the_normalised_text(frontend, text):
    for chunk in frontend.encode(text):
        assert len(chunk.owners) == len(chunk.phonemes)
        for owner, symbol in zip(chunk.owners, chunk.phonemes, strict=True):
            if owner is None:
                assert symbol in ("sil", "eos", "#0", "#3")
            else:
                assert 0 <= owner[0] < owner[1] <= len(chunk.normalized)
        starts = [owner[0] for owner in chunk.owners if owner is not None]
        assert starts == sorted(starts)  # reading order


@pytest.mark.parametrize("text", [
    "会议定于12:30开始，气温-5°C。", "他得了第2名！", "请拨打+86 138-1234-5678", "邮箱zhang.san2024@example.com",
    "访问https://www.example.com/docs查看", "2024-03-05出发，2024/3/5回来", "版本1.2.3发布", "5000mAh电池",
    "约1/3的人", "哪儿好玩儿？", "ＡＢＣ，５０％", "Привет你好", "COVID-19疫情", "iPhone和Wi-Fi", "199，299，399元",
])
def test_normalised_texts_align_with_every_reading_owned(frontend, text):
    for chunk in frontend.encode(text):
        segments = align_piece(chunk.text, chunk.normalized, chunk.owners, [1] * len(chunk.phonemes))
        assert "".join(chunk.text[s.start:s.end] for s in segments) == chunk.text
        assert all(a.t1 <= b.t0 for a, b in zip(segments, segments[1:], strict=False))
        silent = [chunk.text[s.start:s.end] for s in segments if s.t0 == s.t1]
        # Only what the voice cannot read, whitespace and punctuation may be silent; every digit and letter sounds.
        assert not any(c.isdigit() or c.isascii() and c.isalpha() for unit in silent for c in unit), silent


def test_a_rewritten_span_is_one_unit_and_gets_its_syllables_time(frontend):
    chunk = frontend.encode("2024年3.5%。")[0]
    durations = [1] * len(chunk.phonemes)
    segments = align_piece(chunk.text, chunk.normalized, chunk.owners, durations)
    assert [chunk.text[s.start:s.end] for s in segments] == ["2024", "年", "3.5%", "。"]
    owned = owned_text(chunk, segments)
    # 二零二四: 4 syllables of 2 symbols with #0 between: 11 frames after the opening sil (its last #0 too).
    assert owned["2024"] == (1, 1 + 4 * 2 + 4)
    assert owned["。"][1] == len(durations)  # the closing sil and eos end with the sentence's full stop


def test_erhua_and_a_word_read_whole_are_one_unit(frontend):
    chunk = frontend.encode("花儿说OK")[0]
    segments = align_piece(chunk.text, chunk.normalized, chunk.owners, [2] * len(chunk.phonemes))
    assert [chunk.text[s.start:s.end] for s in segments] == ["花儿", "说", "OK"]


def test_segments_cover_the_piece_in_order_and_end_at_the_mel_length():
    # "a b": the space produced no symbol; symbols: sil a #0 b sil eos.
    owners = [None, (0, 1), None, (2, 3), None, None]
    segments = align_piece("a b", "a b", owners, [3, 5, 1, 4, 6, 2])
    assert segments == [Segment(0, 1, 3, 9), Segment(1, 2, 9, 9), Segment(2, 3, 9, 21)]


def test_mismatched_owners_are_refused():
    with pytest.raises(ValueError, match="owners"):
        align_piece("a", "a", [None], [1, 2])


def test_timeline_places_pieces_pauses_and_gaps_in_samples():
    timeline = Timeline("  你好。 再见", RATE)
    timeline.piece("你好。", [Segment(0, 1, 2, 10), Segment(1, 2, 10, 18), Segment(2, 3, 18, 20)], HOP, 20 * HOP)
    timeline.silence(6000)  # the pause between chunks
    timeline.piece("再见", [Segment(0, 1, 1, 9), Segment(1, 2, 9, 16)], HOP, 16 * HOP)
    stamps = timeline.timings()
    assert "".join(t.text for t in stamps) == "  你好。 再见"
    assert stamps[0] == Timing("  ", 0.0, 0.0)
    assert stamps[3] == Timing("。", 18 * HOP / RATE, (20 * HOP + 6000) / RATE)  # the pause after its full stop
    assert stamps[4] == Timing(" ", (20 * HOP + 6000) / RATE, (20 * HOP + 6000) / RATE)
    assert stamps[-1].end_s == timeline.samples / RATE


def test_a_piece_missing_from_the_text_is_an_error():
    timeline = Timeline("你好", RATE)
    with pytest.raises(ValueError, match="not found"):
        timeline.piece("再见", [], HOP, 0)


def test_words_group_characters_and_leave_punctuation_out():
    stamps = tuple(Timing(c, i * 0.1, (i + 1) * 0.1) for i, c in enumerate("今天天气，真好。"))
    assert [w.text for w in words(stamps)] == ["今天天气", "真", "好"]
    assert words(stamps)[0] == Timing("今天天气", 0.0, 0.4)


def test_a_word_sharing_a_unit_with_its_neighbour_is_merged():
    stamps = (Timing("3.5%", 0.0, 1.0), Timing("的", 1.0, 1.2))
    assert [w.text for w in words(stamps)] == ["3.5%", "的"]


@pytest.mark.parametrize("speed", [0.5, 1.0, 2.0])
def test_engine_timings_cover_the_text_and_add_up_to_the_audio(engine, speed):
    text = "第一句话很短。第二句话，带着逗号和数字2024年，还有3.5%的增长！\n\n第三句：你好😀再见"
    audio, timings = engine.synthesize_timed(text, SynthesisParams(speed=speed))
    assert "".join(t.text for t in timings.chars) == text
    assert timings.chars[-1].end_s == pytest.approx(len(audio) / RATE, abs=1e-4)
    ends = [t.end_s for t in timings.chars]
    assert ends == sorted(ends) and all(t.start_s <= t.end_s for t in timings.chars)


def test_pieces_the_decoder_cannot_take_at_once_are_timed_with_their_pause(engine, monkeypatch):
    import inference.engines.fastspeech2 as fs2

    monkeypatch.setattr(fs2, "MAX_IDS", 30)  # force model-sized pieces inside one chunk
    text = "我们一起去公园散步，然后去图书馆看书，最后回家吃饭。"
    audio, timings = engine.synthesize_timed(text, SynthesisParams())
    assert "".join(t.text for t in timings.chars) == text
    assert timings.chars[-1].end_s == pytest.approx(len(audio) / RATE, abs=1e-4)
    commas = [t for t in timings.chars if t.text == "，"]
    assert all(t.end_s - t.start_s >= fs2.PIECE_PAUSE_S for t in commas)  # each piece pause sits after its comma
