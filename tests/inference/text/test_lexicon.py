"""The operators' pronunciation dictionary in the Mandarin frontend (inference.text.lexicon through the G2P): its
readings win over pypinyin's phrases and the polyphone rules, its words stay one word for sandhi, and a reading
the voice cannot say fails the worker's boot."""

from __future__ import annotations

import pytest

from inference.errors import BootError
from inference.text import MandarinFrontend
from inference.text.lexicon import spans
from tts_vocab.lexicon import parse_lexicon

LEXICON = parse_lexicon("银行\tyin2 xing2\n长城\tzhang3 cheng2\n展览馆\tzhan3 lan3 guan3\n阿房宫\ta1 pang2 gong1\n")


@pytest.fixture(scope="module")
def with_lexicon(mapper) -> MandarinFrontend:
    return MandarinFrontend(mapper, LEXICON)


def pinyin(frontend: MandarinFrontend, text: str) -> list[str]:
    return [p for chunk in frontend.phonemize(text)["chunks"] for p in chunk["pinyin"]]


def test_entry_wins_over_the_phrase_dictionary(frontend, with_lexicon):
    assert pinyin(frontend, "我去银行。") == ["wo3", "qu4", "yin2", "hang2"]
    assert pinyin(with_lexicon, "我去银行。") == ["wo3", "qu4", "yin2", "xing2"]
    # The symbols sent to the model change with it.
    assert "x" in with_lexicon.phonemize("银行")["chunks"][0]["symbols"]


def test_entry_wins_over_the_polyphone_rules(frontend, with_lexicon):
    # The degree-word rule reads 长 after 很 as chang2; the entry says zhang3 for the word 长城.
    assert pinyin(frontend, "很长城")[1] == "chang2"
    assert pinyin(with_lexicon, "很长城")[1:] == ["zhang3", "cheng2"]


def test_entry_is_one_word_for_sandhi(with_lexicon):
    # Dictionary tones, surface tones by the word: 3-3-3 inside one word is 2-2-3.
    assert pinyin(with_lexicon, "展览馆") == ["zhan2", "lan2", "guan3"]
    assert pinyin(with_lexicon, "阿房宫很大") == ["a1", "pang2", "gong1", "hen3", "da4"]


def test_longest_match_left_to_right():
    lexicon = parse_lexicon("银行\tyin2 xing2\n行长\thang2 zhang3\n银行行长\tyin2 hang2 hang2 zhang3\n")
    assert spans("银行行长说", lexicon) == [(0, "银行行长")]
    assert spans("去银行长", lexicon) == [(1, "银行")]
    assert spans("没有", lexicon) == []


def test_text_without_entries_reads_as_before(frontend, with_lexicon):
    text = "今天天气真好，我们一起去公园散步吧。"
    assert with_lexicon.phonemize(text) == frontend.phonemize(text)


def test_reading_the_voice_cannot_say_fails_the_boot(mapper):
    with pytest.raises(BootError, match="no symbols for biang2"):
        MandarinFrontend(mapper, parse_lexicon("面\tbiang2\n"))
