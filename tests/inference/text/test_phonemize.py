"""The phonemizer view: MandarinFrontend.phonemize's shape and its agreement with what encode sends."""

from __future__ import annotations

import json
import re

import pytest

from inference.text.g2p import _HAN
from tests.inference.text.polyphone_table import HELD_OUT_2_TABLE, HELD_OUT_TABLE, POLYPHONE_TABLE, parse
from tests.inference.text.test_sandhi import CASES as SANDHI_CASES

_HAN_CHAR = re.compile(f"[{_HAN}]")


def test_shape(frontend):
    view = frontend.phonemize("花儿开了😀，你好！")
    assert set(view) == {"normalized", "chunks", "skipped"}
    assert view["normalized"] == "花儿开了😀，你好!"
    (chunk,) = view["chunks"]
    assert set(chunk) == {"text", "pinyin", "symbols"}
    assert chunk["text"] == "花儿开了😀，你好！"
    assert chunk["pinyin"] == ["hua1", "er5", "kai1", "le5", "ni2", "hao3"]  # sandhi applied: ni2
    assert chunk["symbols"] == ["sil", "h", "ua1", "er5", "#0", "k", "ai1", "#0", "l", "e5", "#3",
                                "n", "i2", "#0", "h", "ao3", "sil", "eos"]
    assert view["skipped"] == [{"char": "😀", "code_point": "U+1F600"}]
    json.dumps(view)  # JSON-ready


def test_symbols_equal_what_encode_sends(frontend):
    text = "今天天气真好。我们去展览馆看一看，不要迟到！发邮件到a1@b.cn就行。" * 3
    view = frontend.phonemize(text)
    chunks = frontend.encode(text)
    assert [c["symbols"] for c in view["chunks"]] == [list(c.phonemes) for c in chunks]
    assert [c["text"] for c in view["chunks"]] == [c.text for c in chunks]


def test_nothing_speakable_gives_no_chunks_and_lists_what_was_skipped(frontend):
    view = frontend.phonemize("😀👍")
    assert view["chunks"] == []
    assert [s["code_point"] for s in view["skipped"]] == ["U+1F600", "U+1F44D"]


def test_skipped_characters_are_logged_with_code_points(frontend, caplog):
    with caplog.at_level("INFO", logger="tts_ops.text"):
        frontend.encode("你好😀")
    assert "U+1F600" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="tts_ops.text"):
        frontend.encode("你好，“世界”。")  # punctuation is silent by design: a positive control for the above
    assert "skipped" not in caplog.text


@pytest.mark.parametrize("sentence", [parse(m)[0] for m, _ in POLYPHONE_TABLE + HELD_OUT_TABLE + HELD_OUT_2_TABLE]
                         + list(SANDHI_CASES))
def test_one_syllable_per_character_for_chinese_text(frontend, sentence):
    pinyin = [p for chunk in frontend.phonemize(sentence)["chunks"] for p in chunk["pinyin"]]
    assert len(pinyin) == len(_HAN_CHAR.findall(sentence))
    assert all(re.fullmatch(r"[a-z]+[1-5]", p) for p in pinyin)


def test_pinyin_spelling_is_pypinyins(frontend):
    assert frontend.phonemize("有绿嗯")["chunks"][0]["pinyin"] == ["you3", "lv4", "en2"]
