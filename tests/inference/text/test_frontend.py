"""Mandarin frontend: exact Baker symbol sequences for normalisation, polyphones, erhua, letters and prosody."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from inference.errors import BootError, TextError

# text -> expected symbols between the framing "sil" and "sil eos", each syllable written as "initial final".
CASES = {
    # The reference sentence of the TensorFlowTTS Baker processor.
    "今天天气真好": "j in1 #0 t ian1 #0 t ian1 #0 q i4 #0 zh en1 #0 h ao3",
    # Text normalisation: numbers, dates, times, money, percentages, phone numbers, ordinals, decimals.
    "我有3个苹果": "^ uo2 #0 ^ iou3 #0 s an1 #0 g e4 #0 p ing2 #0 g uo3",
    "2024年3月5日": "^ er4 #0 l ing2 #0 ^ er4 #0 s ii4 #0 n ian2 #0 s an1 #0 ^ ve4 #0 ^ u3 #0 r iii4",
    "下午3:30": "x ia4 #0 ^ u3 #0 s an1 #0 d ian3 #0 s an1 #0 sh iii2 #0 f en1",
    "¥12.5": "sh iii2 #0 ^ er4 #0 d ian2 #0 ^ u3 #0 ^ van2",
    "50%": "b ai3 #0 f en1 #0 zh iii1 #0 ^ u3 #0 sh iii2",
    "５０％": "b ai3 #0 f en1 #0 zh iii1 #0 ^ u3 #0 sh iii2",
    "13812345678": "^ iao1 #0 s an1 #0 b a1 #0 ^ iao1 #0 ^ er4 #0 s an1 #0 s ii4 #0 ^ u3 #0 l iou4 #0 q i1 #0 b a1",
    "第1名": "d i4 #0 ^ i1 #0 m ing2",
    "3.14": "s an1 #0 d ian3 #0 ^ i1 #0 s ii4",
    "1,000,000": "^ i4 #0 b ai3 #0 ^ uan4",
    # Polyphones.
    "银行": "^ in2 #0 h ang2",
    "行走": "x ing2 #0 z ou3",
    "重要": "zh ong4 #0 ^ iao4",
    "重新": "ch ong2 #0 x in1",
    "长大": "zh ang3 #0 d a4",
    "很长": "h en3 #0 ch ang2",
    "慢慢地": "m an4 #0 m an4 #0 d e5",
    # Erhua folds into the syllable before it; 儿 inside words like 女儿 stays a syllable.
    "花儿": "h ua1 er5",
    "一点儿": "^ i4 #0 d ian3 er5",
    "哪儿玩儿去": "n a3 er5 #0 ^ uan2 er5 #0 q v4",
    "女儿": "n v3 #0 ^ er2",
    "儿子": "^ er2 #0 z ii5",
    # Interjections the normaliser would delete, and 嗯 (pinyin n) read as en.
    "好啊": "h ao3 #0 ^ a5",
    "嗯": "^ en2",
    # Zero-initial syllables, ü, the apical vowels of zhi/chi/shi/ri/zi/ci/si.
    "我们": "^ uo3 #0 m en5",
    "音乐": "^ in1 #0 ^ ve4",
    "语言": "^ v3 #0 ^ ian2",
    "绿": "l v4",
    "女": "n v3",
    "知吃石日子次四": "zh iii1 #0 ch iii1 #0 sh iii2 #0 r iii4 #0 z ii5 #0 c ii4 #0 s ii4",
    # Tone sandhi, as the Baker labels have it.
    "你好": "n i2 #0 h ao3",
    # Latin letters, spelled.
    "GPU": "j i4 #0 p i1 #0 ^ iou1",
    "iPhone": "^ ai4 #0 f eng4",  # a brand in the word lexicon
    "iPod": "^ ai4 #0 p i1 #0 ^ ou1 #0 d i4",  # not in it: spelled
    "A股": "^ ei1 #0 g u3",
    "W": "d a2 #0 b u5 #0 l iou5",
    # Emoji and other scripts are dropped without a break.
    "你好😀世界👍": "n i2 #0 h ao3 #0 sh iii4 #0 j ie4",
    "Привет你好": "n i2 #0 h ao3",
    # Prosody: #3 at clause punctuation, sil at a sentence end inside the chunk.
    "你好，世界。再见！": "n i2 #0 h ao3 #3 sh iii4 #0 j ie4 sil z ai4 #0 j ian4",
    "我们、你们：好": "^ uo3 #0 m en5 #3 n i3 #0 m en5 #3 h ao3",
}

UNSPEAKABLE = ["", "   \n\t", "，。！？", "...!!!", "😀👍🎉", "Привет"]


@pytest.mark.parametrize("text", list(CASES))
def test_phoneme_sequence(frontend, text):
    expected = ["sil", *CASES[text].split(), "sil", "eos"]
    assert frontend.phonemes(frontend.normalize(text)) == expected


@pytest.mark.parametrize("text", UNSPEAKABLE)
def test_nothing_speakable_is_a_text_error(frontend, text):
    with pytest.raises(TextError, match="nothing speakable"):
        frontend.encode(text)
    with pytest.raises(TextError, match="nothing speakable"):
        frontend.phonemes(frontend.normalize(text))


def test_every_symbol_is_in_the_inventory(frontend, mapper):
    inventory = set(mapper["symbol_to_id"])
    text = "".join(CASES) + "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 呣噷欸"
    for chunk in frontend.encode(text):
        assert set(chunk.phonemes) <= inventory


def test_ids_are_int32_and_match_the_mapper(frontend, mapper):
    phonemes = frontend.phonemes("今天")
    ids = frontend.ids(phonemes)
    assert ids.dtype == np.int32 and ids.shape == (len(phonemes),)
    assert ids.tolist() == [mapper["symbol_to_id"][p] for p in phonemes]


def test_ids_reject_unknown_symbols(frontend):
    with pytest.raises(TextError, match="xx9"):
        frontend.ids(["sil", "xx9", "eos"])


def test_encode_chunks_are_frozen_and_consistent(frontend):
    chunks = frontend.encode("今天天气真好。我有3个苹果，你呢？" * 3, max_chars=20)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.ids.tolist() == frontend.ids(list(chunk.phonemes)).tolist()
        assert chunk.phonemes[0] == "sil" and chunk.phonemes[-2:] == ("sil", "eos")
        assert not chunk.ids.flags.writeable
        with pytest.raises(dataclasses.FrozenInstanceError):
            chunk.text = "x"
    assert "三" in chunks[0].normalized


def test_encode_drops_unspeakable_chunks(frontend):
    chunks = frontend.encode("😀" * 10 + "。今天天气真好。", max_chars=12)
    assert [chunk.text for chunk in chunks] == ["今天天气真好。"]


def test_lone_surrogates_and_control_characters_do_not_crash(frontend):
    assert frontend.normalize("你\x00好\ud800") == "你 好"
    assert frontend.encode("你\ud800好\x07")[0].phonemes == ("sil", "n", "i2", "#0", "h", "ao3", "sil", "eos")


def test_r_suffixed_reading_is_split_like_the_baker_processor(frontend):
    g2p = frontend._g2p
    assert g2p.syllable("huar1") == ("h", "ua1", "er5")
    # A custom pypinyin dictionary may spell 花儿 as one reading; the 儿 it covers is not read again.
    assert g2p.han_syllables("花儿开", ["huar1", "kai1"]) == [("h", "ua1", "er5"), ("k", "ai1")]


def test_pinyin_missing_from_the_table_is_skipped(frontend):
    assert frontend._g2p.syllable("biang2") is None
    assert frontend._g2p.han_syllables("\U00030ede好", ["biang2", "hao3"]) == [("h", "ao3")]


def test_corrupt_mapper_is_a_boot_error(mapper):
    from inference.text import MandarinFrontend

    with pytest.raises(BootError, match="pinyin_dict"):
        MandarinFrontend({"symbol_to_id": mapper["symbol_to_id"]})
    broken = dict(mapper, symbol_to_id={k: v for k, v in mapper["symbol_to_id"].items() if k != "zh"})
    with pytest.raises(BootError, match="zh"):
        MandarinFrontend(broken)


def test_normalizer_is_a_prebuilt_singleton():
    from importlib.resources import files

    from inference.text.normalize import get_normalizer

    normalizer = get_normalizer()
    assert normalizer is get_normalizer()
    # Loaded from the FSTs shipped in the wheel, not rebuilt somewhere else.
    assert all(files("tn").joinpath(name).is_file() for name in ("zh_tn_tagger.fst", "zh_tn_verbalizer.fst"))


@pytest.mark.parametrize("text, expected", [
    ("房间号是101，102，103", "房间号是一百零一，一百零二，一百零三"),  # a list, not one huge number
    ("价格分别为199，299，399元", "价格分别为一百九十九，两百九十九，三百九十九元"),
    ("总共1,000,000元", "总共一百万元"),
    ("第1名，第2名", "第一名，第二名"),  # ordinals are 二, never 两
    ("５０％", "百分之五十"),
    # International phone numbers: the country code is not a signed number, the hyphen not a minus.
    ("请拨打+86 138-1234-5678", "请拨打加八六 幺三八 幺二三四 五六七八"),
    ("电话+86-13812345678", "电话加八六 幺三八幺二三四五六七八"),
    ("电话：+8613812345678", "电话:加八六 幺三八幺二三四五六七八"),
    ("+44 (20) 7946 0958", "加四四 二零 七九四六 零九五八"),
    ("温度+5度", "温度正五度"),                                  # a signed number stays one
    ("1+1=2", "一加一等于二"),
])
def test_normalisation_of_lists_thousands_ordinals_and_full_width(frontend, text, expected):
    assert frontend.normalize(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("他跑得很快", "t a1 #0 p ao3 #0 d e5 #0 h en3 #0 k uai4"),   # 得 particle before a complement
    ("我得走了", "^ uo3 #0 d ei2 #0 z ou3 #0 l e5"),            # 得 = must
    ("得到", "d e2 #0 d ao4"),                                 # 得 = obtain (unchanged)
    ("不一样", "b u4 #0 ^ i2 #0 ^ iang4"),
])
def test_frequent_polyphones_in_context(frontend, text, expected):
    assert " ".join(frontend.phonemes(frontend.normalize(text))[1:-2]) == expected
