"""Normalisation tables for the issue's classes: approximate quantities before fractions, e-mail addresses and
URLs, English words and brands vs acronyms, units after numbers. Each case hand-checked."""

from __future__ import annotations

import pytest

from inference.text.normalize import normalize_text


def spoken(frontend, text: str) -> str:
    return " ".join(p for chunk in frontend.phonemize(text)["chunks"] for p in chunk["pinyin"])


# The approximate-quantity word stays whole and before the fraction (the normaliser made 约1/3 三分之约一).
APPROXIMATE = {
    "约1/3的人": "约 三分之一的人",
    "大约1/3": "大约 三分之一",
    "比去年便宜了约1/3。": "比去年便宜了约 三分之一.",
    "约有2/3的人同意": "约有 三分之二的人同意",
    "约占1/4": "约占 四分之一",
    "近1/2的用户": "近 二分之一的用户",
    "将近1/5": "将近 五分之一",
    "超过1/2": "超过 二分之一",
    "约三分之一": "约三分之一",  # already in characters: untouched
    "近二分之一": "近二分之一",
    "约30%": "约百分之三十",
    "约100元": "约一百元",
    "约3-5天": "约三到五天",
    # Positive controls: fractions and dates without a word before them read as before.
    "1/3": "三分之一",
    "2024/3/5": "二零二四年三月五日",
}


@pytest.mark.parametrize("text", list(APPROXIMATE))
def test_approximate_quantity_before_fraction(text):
    assert normalize_text(text) == APPROXIMATE[text]


def test_approximate_word_is_spoken_before_the_fraction(frontend):
    assert spoken(frontend, "约1/3") == "yue1 san1 fen1 zhi1 yi1"
    assert spoken(frontend, "大约1/3") == "da4 yue1 san1 fen1 zhi1 yi1"
    assert spoken(frontend, "近二分之一") == "jin4 er4 fen1 zhi1 yi1"


# Addresses: @ 艾特, . 点, digit runs one digit at a time (1 as 幺, as in phone numbers), letters spelled.
ADDRESSES = {
    "zhang.san2024@example.com": "zhang点san二零二四艾特example点com",
    "12345@qq.com": "幺二三四五艾特qq点com",
    "li_si-01@mail.example.cn": "li下划线si杠零幺艾特mail点example点cn",
    "请发邮件到ops@tts.cn。": "请发邮件到ops艾特tts点cn.",
    "访问https://www.example.com/docs查看": "访问https冒号斜杠斜杠www点example点com斜杠docs查看",
    "打开www.baidu.com。": "打开www点baidu点com.",
    "http://a.cn:8080/x?id=7": "http冒号斜杠斜杠a点cn冒号八零八零斜杠x问号id等于七",
}


@pytest.mark.parametrize("text", list(ADDRESSES))
def test_addresses_are_spelled(text):
    assert normalize_text(text) == ADDRESSES[text]


def test_address_is_spoken_in_full(frontend):
    assert spoken(frontend, "a1@b.cn") == "ei1 yao1 ai4 te4 bi4 dian3 xi1 en1"
    assert spoken(frontend, "x_y@b.cn").startswith("ai4 ke4 si5 xia4 hua2 xian4 wai4")
    assert frontend.phonemize("a1@b.cn")["skipped"] == []


# English words and brands read as words; acronyms (all capitals) spelled.
WORDS = {
    "打开App": "da3 kai1 ai1 pu3",
    "下载APP": "xia4 zai4 ei1 pi1 pi1",  # all capitals: an acronym, spelled
    "连上Wi-Fi": "lian2 shang4 wai4 fei1",
    "WIFI密码": "wai4 fei1 mi4 ma3",
    "wifi": "wai4 fei1",
    "点OK": "dian3 ou1 kei1",
    "发email": "fa1 yi1 mei4 er5",
    "Windows系统": "wen1 dou1 si5 xi4 tong3",
    "iPhone": "ai4 feng4",
    "USB接口": "you1 ai4 si5 bi4 jie1 kou3",
    "CEO": "xi1 yi4 ou1",
    "GPU": "ji4 pi1 you1",
    "iPod": "ai4 pi1 ou1 di4",  # not in the lexicon: spelled
}


@pytest.mark.parametrize("text", list(WORDS))
def test_words_and_acronyms(frontend, text):
    assert spoken(frontend, text) == WORDS[text]


UNITS = {
    "5000mAh": "五千毫安时",
    "3.5kWh": "三点五千瓦时",
    "风速12m/s": "风速每秒十二米",
    "100cm": "一百厘米",
    "98.6℉": "九十八点六华氏度",
    "-5℃": "负五摄氏度",
    "3.14": "三点一四",
}


@pytest.mark.parametrize("text", list(UNITS))
def test_units_ranges_negatives_decimals(text):
    assert normalize_text(text) == UNITS[text]


# Dotted numbers: version numbers and addresses part by part with 点 (the normaliser dropped the first dot:
# 1.2.3 -> 一.二点三), YYYY.MM.DD as a date; decimals, ranges and negatives as before (positive controls).
DOTTED = {
    "版本1.2.3发布": "版本一点二点三发布",
    "升级到10.15.7": "升级到十点十五点七",
    "地址192.168.1.10": "地址一九二点一六八点一点十",
    "v2.0.1": "v二点零点一",
    "2024.03.05开业": "二零二四年三月五日开业",
    "圆周率3.14": "圆周率三点一四",
    "涨了1.5倍": "涨了一点五倍",
    "3-5天": "三到五天",
    "最低-5℃": "最低负五摄氏度",
}


@pytest.mark.parametrize("text", list(DOTTED))
def test_dotted_numbers_decimals_ranges_and_negatives(text):
    assert normalize_text(text) == DOTTED[text]
