"""Mandarin tone sandhi, applied once, to the dictionary tones of one run of Chinese characters.

Runs in the worker process and in-process for ``tts-ops synth`` (pure Python; the G2P calls it with pypinyin's
readings, taken with pypinyin's own sandhi off, and jieba's segmentation of the run: ``inference.text.words``).

The Baker corpus that trained the bundled voice is labelled with surface tones (你好 ni2 hao3, 卡尔普 ka2 er2 pu3),
so the model must receive them. Rules, in the order they run:

1. 不 bu4 becomes bu2 before a fourth tone (不去 bu2 qu4, 不是 bu2 shi4; 不能 bu4 neng2). A neutral 不 from the
   dictionary (对不起 dui4 bu5 qi3) is kept.
2. 一 keeps yi1 when it is a number: after 第 (第一), after or before another numeral (十一, 一九九八年, 一一),
   after 期/拜/周 (星期一, 礼拜一, 周一), at the end of a word or of the run (唯一, 统一). Between the two halves of
   a reduplicated verb (看一看, 想一想) it is neutral, yi5.
   Otherwise it is yi2 before a fourth tone (一定 yi2 ding4, 一个 yi2 ge4: 个 counts as fourth even when the
   dictionary writes it neutral) and yi4 before any other tone (一直 yi4 zhi2, 一起 yi4 qi3).
3. Third-tone sandhi, 3-3 -> 2-3, inside each word first, then across word boundaries from right to left:
   - two syllables: 展览 zhan2 lan3, 雨伞 yu2 san3;
   - three syllables, all third tone: 2+1 (展览馆 = 展览 + 馆) becomes 2-2-3, 1+2 (小老虎 = 小 + 老虎) 3-2-3.
     A group whose first two characters are a word in the segmenter's dictionary is 2+1, any other 1+2. Where
     both halves are words the first wins (水产品, 海产品, 胆小鬼, 有产者, 蒙古语 are all 2+1; of the 15 such
     all-third-tone words in jieba's dictionary with frequency >= 50 only 小女子 is 1+2; comparing the halves'
     frequencies instead got 5 of the 15 wrong). When the segmenter splits the group (好 + 领导, 买 + 雨伞) the
     across-word rule below gives the same 3-2-3;
   - four or more: pairwise from the right inside the word (a third tone before a third tone becomes second);
   - across words (the segmenter's words, so across pypinyin's phrase boundaries too): a word-final third tone before a
     word-initial third tone becomes second, scanning right to left, so 我很好 -> wo3 hen2 hao3 and
     你也很好 -> ni2 ye3 hen2 hao3.
   A third tone before a neutral tone is left alone (姐姐 jie3 jie5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

NUMERALS = frozenset("零〇一二三四五六七八九十百千万亿两幺")
# A 一 after these is a number (星期一, 礼拜一, 周一 are days; 第一 an ordinal; 唯一/统一/万一 end their words anyway).
_NUMBER_BEFORE = frozenset("第期拜周") | NUMERALS
# Measure words and the like that the dictionary may write neutral but that carry a fourth tone after 一.
_FOURTH_AFTER_YI = frozenset("个")
# Before these place words 一 is a cardinal spoken with sandhi (一百 yi4 bai3, 一万 yi2 wan4), unless a numeral
# precedes it (十一万 shi2 yi1 wan4).
_PLACES = frozenset("百千万亿")


def tone(reading: str) -> str:
    return reading[-1] if reading and reading[-1] in "12345" else ""


def _with_tone(reading: str, new: str) -> str:
    return reading[:-1] + new


def apply_sandhi(run: str, readings: list[str], words: Sequence[str],
                 is_word: Callable[[str], bool] = lambda _: False) -> list[str]:
    """Surface tones for ``readings`` (one per character of ``run``, dictionary tones, "" where unreadable).

    ``words`` is the segmentation of ``run`` (concatenating to it); ``is_word`` tells whether a string is a word
    of the segmenter's dictionary (for the 2+1 / 1+2 decision in three-syllable words)."""
    if len(readings) != len(run) or "".join(words) != run:
        return readings
    out = list(readings)
    _yi_bu(run, out, words)
    _third_tones(run, out, words, is_word)
    return out


def _word_ends(words: Sequence[str]) -> set[int]:
    ends, position = set(), 0
    for word in words:
        position += len(word)
        ends.add(position - 1)
    return ends


def _yi_bu(run: str, out: list[str], words: Sequence[str]) -> None:
    ends = _word_ends(words)
    for i, char in enumerate(run):
        following = out[i + 1] if i + 1 < len(run) else ""
        next_tone = "4" if i + 1 < len(run) and run[i + 1] in _FOURTH_AFTER_YI else tone(following)
        if char == "不" and out[i].startswith("bu") and tone(out[i]) != "5":
            out[i] = "bu2" if next_tone == "4" else "bu4"
        elif char == "一" and out[i].startswith("yi"):
            out[i] = _yi(run, i, next_tone, ends)


def _yi(run: str, i: int, next_tone: str, ends: set[int]) -> str:
    before = run[i - 1] if i else ""
    after = run[i + 1] if i + 1 < len(run) else ""
    if before and before == after and before not in NUMERALS:
        return "yi5"  # 看一看, 想一想
    if not after or before in _NUMBER_BEFORE or (after in NUMERALS and after not in _PLACES):
        return "yi1"
    if i in ends and i > 0:  # word-final: 唯一, 统一, 专一
        return "yi1"
    if not next_tone:
        return "yi1"
    return "yi2" if next_tone == "4" else "yi4"


def _third_tones(run: str, out: list[str], words: Sequence[str], is_word: Callable[[str], bool]) -> None:
    spans, start = [], 0
    for word in words:
        spans.append((start, start + len(word)))
        start += len(word)
    for start, end in spans:
        _inside_word(run, out, start, end, is_word)
    # Across words, right to left: a word-final 3 before a word-initial 3 becomes 2.
    for (_, left_end), (right_start, _) in reversed(list(pairwise(spans))):
        if tone(out[left_end - 1]) == "3" and tone(out[right_start]) == "3":
            out[left_end - 1] = _with_tone(out[left_end - 1], "2")


def _inside_word(run: str, out: list[str], start: int, end: int, is_word: Callable[[str], bool]) -> None:
    tones = [tone(out[k]) for k in range(start, end)]
    if end - start == 3 and tones == ["3", "3", "3"]:
        if is_word(run[start:start + 2]):  # 2+1: 展览馆 zhan2 lan2 guan3
            out[start] = _with_tone(out[start], "2")
        out[start + 1] = _with_tone(out[start + 1], "2")
        return
    for k in range(end - 2, start - 1, -1):
        if tone(out[k]) == "3" and tone(out[k + 1]) == "3":
            out[k] = _with_tone(out[k], "2")
