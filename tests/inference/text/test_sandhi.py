"""Tone sandhi table: surface tones sent to the model, each case hand-checked."""

from __future__ import annotations

import pytest

from inference.text.g2p import _pinyin_readings

CASES = {
    "展览": "zhan2 lan3",
    "雨伞": "yu2 san3",
    "你好": "ni2 hao3",
    "洗手": "xi2 shou3",
    "老鼠": "lao2 shu3",
    "我很好": "wo3 hen2 hao3",
    "你也很好": "ni2 ye3 hen2 hao3",
    "一直": "yi4 zhi2",
    "一定": "yi2 ding4",
    "一起": "yi4 qi3",
    "一个": "yi2 ge4",
    "一样": "yi2 yang4",
    "一百": "yi4 bai3",
    "看一看": "kan4 yi5 kan4",
    "唯一": "wei2 yi1",
    "统一": "tong3 yi1",
    "第一": "di4 yi1",
    "十一": "shi2 yi1",
    "星期一": "xing1 qi1 yi1",
    "一九九八年": "yi1 jiu2 jiu3 ba1 nian2",
    "不去": "bu2 qu4",
    "不是": "bu2 shi4",
    "不要": "bu2 yao4",
    "不能": "bu4 neng2",
    "不一样": "bu4 yi2 yang4",
    "今天天气真好": "jin1 tian1 tian1 qi4 zhen1 hao3",
    # Three third tones over jieba's segmentation. 2+1 (the first two characters are a word): 2-2-3.
    "展览馆": "zhan2 lan2 guan3",
    "洗脸水": "xi2 lian2 shui3",
    "蒙古语": "meng2 gu2 yu3",
    "管理组": "guan2 li2 zu3",
    "跑马场": "pao2 ma2 chang3",  # 马场 is a word too; the structure is 跑马 + 场
    "水产品": "shui2 chan2 pin3",  # 产品 is the commoner word; still 水产 + 品
    "胆小鬼": "dan2 xiao2 gui3",
    "五百米": "wu2 bai2 mi3",
    # 1+2 (the last two are the word): 3-2-3, inside one segment or across 小 + 老虎 / 买 + 雨伞.
    "小老虎": "xiao3 lao2 hu3",
    "纸老虎": "zhi3 lao2 hu3",
    "米老鼠": "mi3 lao2 shu3",
    "好领导": "hao3 ling2 dao3",
    "老保姆": "lao3 bao2 mu3",
    "买雨伞": "mai3 yu2 san3",
    "我也想养小老鼠": "wo3 ye2 xiang3 yang2 xiao3 lao2 shu3",
}


@pytest.mark.parametrize("text", list(CASES))
def test_surface_tones(text):
    assert " ".join(_pinyin_readings(text)) == CASES[text]


def test_three_syllable_structure_comes_from_the_segmenter():
    from inference.text import words

    assert words.segment("我也想养小老鼠")[-1] == "小老鼠"  # one segment: the 1+2 decision is made inside it
    assert words.is_word("老鼠") and not words.is_word("小老")
    assert words.is_word("展览") and not words.is_word("览馆")
