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
}


@pytest.mark.parametrize("text", list(CASES))
def test_surface_tones(text):
    assert " ".join(_pinyin_readings(text)) == CASES[text]
