"""The pronunciation dictionary's file format (tts_vocab.lexicon): entries, comments, and every bad line named
with its line number."""

from __future__ import annotations

import pytest
from pypinyin.contrib.tone_convert import to_tone3
from pypinyin.pinyin_dict import pinyin_dict

from tts_vocab.lexicon import PINYIN_SYLLABLES, LexiconError, is_syllable, load_lexicon, parse_lexicon

GOOD = "# product names\n\n银行\tyin2 xing2\n  # indented comment\n曾\tzeng1\n绿茶\tLÜ4 cha2\r\n"


def test_entries_comments_and_blank_lines():
    lexicon = parse_lexicon(GOOD)
    assert lexicon.entries == {"银行": ("yin2", "xing2"), "曾": ("zeng1",), "绿茶": ("lv4", "cha2")}
    assert len(lexicon) == 3 and lexicon.longest == 2


def test_a_later_line_overrides_an_earlier_one():
    assert parse_lexicon("行\thang2\n行\txing2\n").entries == {"行": ("xing2",)}


def test_every_bad_line_is_named_with_its_number():
    text = "银行\tyin2 hang2\n行长 hang2 zhang3\n行长\thang2\nabc\ta1 b2 c3\n重庆\tchong2 qinq4\n好\thao6\n"
    with pytest.raises(LexiconError) as caught:
        parse_lexicon(text, "ops.tsv")
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 5", "line 6"]
    assert "no tab" in problems[0]
    assert "2 characters in '行长' but 1 syllables" in problems[1]
    assert "Chinese characters only" in problems[2]
    assert "qinq4" in problems[3] and "hao6" in problems[4]
    assert str(caught.value).startswith("pronunciation dictionary ops.tsv: line 2")


def test_syllables_need_a_tone_digit():
    assert is_syllable("hang2") and is_syllable("de5") and is_syllable("lve4")
    assert not is_syllable("hang") and not is_syllable("hang0") and not is_syllable("xyz1")


def test_digest_ignores_comments_and_order_but_not_readings():
    a = parse_lexicon("银行\tyin2 xing2\n曾\tzeng1\n")
    b = parse_lexicon("# x\n曾\tzeng1\n\n银行\tyin2 xing2\n")
    c = parse_lexicon("银行\tyin2 hang2\n曾\tzeng1\n")
    assert a.digest == b.digest != c.digest


def test_unreadable_file_is_named(tmp_path):
    with pytest.raises(LexiconError, match="cannot read it"):
        load_lexicon(tmp_path / "missing.tsv")
    (tmp_path / "latin1.tsv").write_bytes("行\thang2\n".encode("gb18030"))
    with pytest.raises(LexiconError, match="cannot read it"):
        load_lexicon(tmp_path / "latin1.tsv")


def test_syllable_table_is_pypinyins():
    """The stdlib table equals the base readings of pypinyin's character dictionary (the worker's G2P source)."""
    readings = {r for value in pinyin_dict.values() for r in value.split(",")}
    bases = {to_tone3(r, neutral_tone_with_five=True).rstrip("12345") for r in readings}
    assert PINYIN_SYLLABLES == {b for b in bases if b.isascii() and b.isalpha()}
