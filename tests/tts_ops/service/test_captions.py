"""Captions and the timed JSON answer built from timestamps (pure)."""

from __future__ import annotations

import base64

from tts_ops.service.captions import captions, cues, timed_body
from tts_vocab.timings import Timing, Timings


def stamps(text: str, step: float = 0.1, silent: str = " \n") -> tuple[Timing, ...]:
    out, now = [], 0.2
    for char in text:
        length = 0.0 if char in silent else step
        out.append(Timing(char, round(now, 4), round(now + length, 4)))
        now += length
    return tuple(out)


def test_cues_end_at_sentences_and_long_clauses():
    timings = stamps("你好。今天天气真好，我们一起去公园散步吧！短，句。")
    lines = cues(timings)
    assert [cue.text for cue in lines] == ["你好。", "今天天气真好，我们一起去公园散步吧！", "短，句。"]
    assert lines[0].start_s == 0.2 and lines[-1].end_s == timings[-1].end_s


def test_a_long_line_without_punctuation_is_cut():
    lines = cues(stamps("一" * 45))
    assert [len(cue.text) for cue in lines] == [20, 20, 5]
    assert all(a.end_s <= b.start_s for a, b in zip(lines, lines[1:], strict=False))


def test_whitespace_only_lines_are_dropped_and_inner_space_collapsed():
    lines = cues(stamps("好。\n\n  你好  吗？"))
    assert [cue.text for cue in lines] == ["好。", "你好 吗？"]


def test_srt_layout():
    assert captions(stamps("你好。再见！"), "srt") == (
        "1\n00:00:00,200 --> 00:00:00,500\n你好。\n\n2\n00:00:00,500 --> 00:00:00,800\n再见！\n")


def test_vtt_layout_and_hours():
    late = (Timing("好", 3725.5, 3726.25),)
    assert captions(late, "vtt") == "WEBVTT\n\n01:02:05.500 --> 01:02:06.250\n好\n"


def test_no_sound_no_cues():
    assert captions(stamps("  \n"), "vtt") == "WEBVTT\n"
    assert captions(stamps("  \n"), "srt") == ""


def test_timed_body_shape():
    timings = Timings(stamps("你好"), (Timing("你好", 0.2, 0.4),))
    body = timed_body(b"RIFF", "wav", 24000, 0.4, timings)
    assert set(body) == {"audio", "format", "sample_rate", "duration_s", "timestamps", "words"}
    assert base64.b64decode(body["audio"]) == b"RIFF"
    assert body["words"] == [{"text": "你好", "start_s": 0.2, "end_s": 0.4}]


def test_client_text_cannot_forge_a_timing_line_or_vtt_markup():
    stamps = [Timing("A-->B <b>&", 0.0, 1.0), Timing("。", 1.0, 1.2)]
    vtt = captions(stamps, "vtt").splitlines()
    assert vtt[2] == "00:00:00.000 --> 00:00:01.200" and vtt[3] == "A-&gt;B &lt;b&gt;&amp;。"
    srt = captions(stamps, "srt").splitlines()
    assert srt[2] == "A->B <b>&。"  # SubRip has no entities: only the arrow is defused
