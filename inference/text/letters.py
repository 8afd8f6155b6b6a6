"""How the Baker voice reads Latin letters, English words and stray ASCII digits, as Mandarin syllables.

Runs in the worker process and in-process for ``tts-ops synth`` (imported by the G2P; pure data).

The Baker corpus is Mandarin only, so the voice has no English phonemes. Letters are spelled one by one ("GPU" ->
G P U, "iPhone" -> I P H O N E) with the syllables a Mainland speaker uses when spelling aloud, written as tone-3
pinyin so they go through the same pinyin -> Baker-symbol table as Chinese text (the G2P checks at load time
that every syllable below exists in the model's inventory). Choices, where usage varies:

- One syllable where Mandarin has a close one: A ei1, B bi4, C xi1, D di4, E yi4, G ji4, I ai4, J jie4, K kai4,
  N en1, O ou1, P pi1, Q qiu1, T ti4, U you1, V wei1, Y wai4, Z zei4.
- Two where the letter ends in a consonant Mandarin cannot end a syllable with: F ai4 fu5, H ei1 qu1,
  L ai4 le5, M ai4 mu5, R a1 er3, S ai4 si5 (the second syllable neutral, as people say them).
- Three for the two long names: W da2 bu5 liu5 ("double-u"), X ai4 ke4 si5.

A small lexicon of English words and brands that Chinese speakers say as words, not letter by letter
(``WORD_READINGS``, written with the syllables people use; Baker has no "fai", so Wi-Fi is wai4 fei1). A word is
looked up case-insensitively, hyphens ignored (Wi-Fi, WiFi, wifi); an all-capital token is an acronym and is
spelled (USB, CEO, APP, EMAIL) unless the lexicon lists that capitalised form (OK, WIFI). Anything not in the
lexicon is spelled: the voice has no English phonemes, and a wrong guess at a word is worse than its letters.

Letter case is otherwise ignored. Digits normally never get here (text normalisation spells numbers out in
context, "15" -> 十五); these readings are the fallback for any it leaves behind, read digit by digit like a
phone number.
"""

from __future__ import annotations

LETTER_READINGS: dict[str, tuple[str, ...]] = {
    "A": ("ei1",),
    "B": ("bi4",),
    "C": ("xi1",),
    "D": ("di4",),
    "E": ("yi4",),
    "F": ("ai4", "fu5"),
    "G": ("ji4",),
    "H": ("ei1", "qu1"),
    "I": ("ai4",),
    "J": ("jie4",),
    "K": ("kai4",),
    "L": ("ai4", "le5"),
    "M": ("ai4", "mu5"),
    "N": ("en1",),
    "O": ("ou1",),
    "P": ("pi1",),
    "Q": ("qiu1",),
    "R": ("a1", "er3"),
    "S": ("ai4", "si5"),
    "T": ("ti4",),
    "U": ("you1",),
    "V": ("wei1",),
    "W": ("da2", "bu5", "liu5"),
    "X": ("ai4", "ke4", "si5"),
    "Y": ("wai4",),
    "Z": ("zei4",),
}

DIGIT_READINGS: dict[str, tuple[str, ...]] = {
    "0": ("ling2",),
    "1": ("yi1",),
    "2": ("er4",),
    "3": ("san1",),
    "4": ("si4",),
    "5": ("wu3",),
    "6": ("liu4",),
    "7": ("qi1",),
    "8": ("ba1",),
    "9": ("jiu3",),
}


# key: the word lower-cased without hyphens -> its syllables.
WORD_READINGS: dict[str, tuple[str, ...]] = {
    "ok": ("ou1", "kei1"),  # 欧克
    "wifi": ("wai4", "fei1"),  # 歪飞
    "app": ("ai1", "pu3"),  # 艾普
    "email": ("yi1", "mei4", "er5"),  # 伊妹儿
    "windows": ("wen1", "dou1", "si5"),  # 温斗斯
    "iphone": ("ai4", "feng4"),  # 爱疯
    "ipad": ("ai4", "pai4"),  # 爱派
    "android": ("an1", "zhuo2"),  # 安卓
    "google": ("gu3", "ge1"),  # 谷歌
    "wechat": ("wei1", "xin4"),  # 微信
    "bye": ("bai4",),  # 拜
    "hello": ("ha1", "lou2"),  # 哈喽
}
# All-capital spellings that are words, not acronyms.
CAPITALISED_WORDS = frozenset({"OK", "WIFI", "WI-FI"})


def readings_for(char: str) -> tuple[str, ...]:
    """Tone-3 pinyin syllables for one ASCII letter or digit; empty for anything else."""
    return LETTER_READINGS.get(char.upper()) or DIGIT_READINGS.get(char, ())


def word_readings(word: str) -> tuple[str, ...]:
    """Syllables for a run of Latin letters (hyphens allowed inside): the lexicon's reading, else its letters."""
    key = word.replace("-", "").lower()
    acronym = len(key) > 1 and word.isupper() and word not in CAPITALISED_WORDS
    if key in WORD_READINGS and not acronym:
        return WORD_READINGS[key]
    return tuple(reading for char in word for reading in readings_for(char))
