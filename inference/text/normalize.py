"""Chinese text normalisation (numbers, dates, times, money, percentages, phone numbers) with WeTextProcessing.

Runs in the worker process and in-process for ``tts-ops synth``; never in the HTTP front end (pynini is heavy).

The normaliser is a process-wide singleton, built on first use under a lock. It is loaded from the FSTs that
ship inside the WeTextProcessing wheel (``tn/zh_tn_tagger.fst``, ``tn/zh_tn_verbalizer.fst``): about 0.15 s and
no network. ``Normalizer()`` rebuilds the FSTs (several seconds, and a write into the given directory) whenever
they are missing or ``overwrite_cache`` is true, and the installed package may be read-only in production, so
we check that the prebuilt files exist and raise ``BootError`` otherwise instead of letting it build.

Loading prebuilt FSTs ignores the constructor's behaviour flags: the wheel's FSTs were compiled with the defaults,
which delete erhua 儿 ("哪儿" -> "哪", changing the meaning) and the interjections 啊/呃 (sentence-final 啊
carries the tone of voice). Those are ASR clean-up choices, not TTS ones, so we hide these characters from the
normaliser behind private-use placeholders and put them back afterwards; the G2P decides what 儿 means.

A few cheap fixes run before the normaliser because its tagger misreads them: full-width ASCII ("５０％" is tagged
only after its own full-to-half step, too late), thousands separators ("1,000,000" -> "一,零零零,..."), a hyphen
between a letter and a digit ("COVID-19" -> "COVID负十九"), international phone numbers ("+86 138-..." read as
正八十六 and a subtraction; spelled digit by digit here), lone surrogates (which make pynini raise) and
control characters.

Fixes added for the issue's normalisation classes (each with a table in tests/inference/text/test_normalize.py):
- An approximate-quantity word glued to an ASCII fraction was swallowed into it: the tagger read 约1/3 as
  三分之约一 ("one about-third"), 大约1/3 as 大三分之约一. A space between a Chinese character and a fraction keeps
  the word whole (约 三分之一); the space is not spoken.
- E-mail addresses and URLs are spelled before the normaliser sees them (it read zhang.san2024@x.com's digits as
  两千零二十四 and the G2P dropped @ and .): ``@`` 艾特, ``.`` 点, ``-`` 杠, ``_`` 下划线, ``/`` 斜杠, ``:`` 冒号
  (the rest in ``_ADDRESS_SYMBOLS``), digit runs one digit at a time with 1 as 幺 (as phone numbers), letters
  left for the G2P to spell or read (``letters``).
- Units the tagger misread: mAh (5000mAh was 五千米Ah) -> 毫安时, kWh (三点五千瓦h) -> 千瓦时.
"""

from __future__ import annotations

import logging
import re
import threading
from importlib.resources import files

from inference.errors import BootError

log = logging.getLogger("tts_ops.text")

_FST_FILES = ("zh_tn_tagger.fst", "zh_tn_verbalizer.fst")

# Characters the prebuilt FSTs would delete or misread -> placeholder (Unicode private use area, which the FSTs
# pass through untouched and which no Chinese text contains). 兒 comes back simplified, as the normaliser would
# have done. ，is masked because the normaliser turns it into "," and then reads 199，299，399元 as one number.
_MASK = str.maketrans({"儿": "\ue000", "兒": "\ue000", "啊": "\ue001", "呃": "\ue002", "，": "\ue003"})
_UNMASK = str.maketrans({"\ue000": "儿", "\ue001": "啊", "\ue002": "呃", "\ue003": "，"})

# Full-width letters, digits and symbols become ASCII (５０％ was left unread), but the Chinese clause and sentence
# marks stay: once ，became "," the normaliser read a list like 199，299，399元 as one number in the hundred millions.
_KEEP_FULL_WIDTH = {ord(c) for c in "，：；！？（）"}
_FULL_TO_HALF = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F) if code not in _KEEP_FULL_WIDTH} | {0x3000: " "}
# A whole ASCII thousands grouping (1,000,000), joined before the normaliser sees it.
_THOUSANDS_GROUP = re.compile(r"(?<![\d,])\d{1,3}(?:,\d{3})+(?![\d,])")
_LETTER_HYPHEN_DIGIT = re.compile(r"(?<=[A-Za-z])-(?=\d)")
# Surrogates cannot be encoded to UTF-8; C0/C1 controls other than tab/newline are noise from copy-paste.
# An international phone number: "+CC" then the number with optional spaces, hyphens or brackets (the normaliser
# read "+86 138..." as 正八十六 and "+86-138..." as a subtraction), or +86 glued to an 11-digit mobile number.
_INTL_PHONE = re.compile(
    r"(?<![0-9A-Za-z+])\+(?:(\d{1,3})(?!\d)\)?[\s-]*(\(?\d[\d\s()-]{4,}\d)|(86)(1[3-9]\d{9}))(?!\d)")
# Digits of a phone number are read one by one, 1 as 幺 (the spoken convention for numbers).
_PHONE_DIGITS = str.maketrans("0123456789", "零幺二三四五六七八九")
# A Chinese character right before an ASCII fraction: the tagger pulls 约 into the fraction (约1/3 -> 三分之约一).
_HAN_BEFORE_FRACTION = re.compile(r"(?<=[\u3400-\u9fff])(?=\d+/\d+(?![\d/]))")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL = re.compile(r"(?<![A-Za-z0-9@])(?:https?://|www\.)[A-Za-z0-9._~:/?#@!$&'*+,;=%-]+")
# Punctuation that ends a sentence or clause, not the address (…查看 www.example.com.).
_ADDRESS_TRAILER = ".,;:!?'"
_ADDRESS_SYMBOLS = {"@": "艾特", ".": "点", "-": "杠", "_": "下划线", "/": "斜杠", ":": "冒号", "+": "加",
                    "%": "百分号", "=": "等于", "?": "问号", "&": "和", "#": "井号", "~": "波浪线"}
_UNIT_AFTER_NUMBER = (
    (re.compile(r"(?<=\d)\s?mAh\b"), "毫安时"),
    (re.compile(r"(?<=\d)\s?kWh\b"), "千瓦时"),
)
# Version numbers and other dotted triples (1.2.3, 10.15.7): each part a number, the dots read 点. Left to the
# normaliser, the first dot was dropped (1.2.3 -> 一.二点三).
_DOTTED = re.compile(r"(?<![\d.])\d{1,4}(?:\.\d{1,4}){2,}(?![\d.])")
_DIGITS = "零一二三四五六七八九"
_UNENCODABLE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_normalizer = None
_load_lock = threading.Lock()
# pynini composes against the shared tagger FST; we do not rely on that being safe across threads.
_run_lock = threading.Lock()


def get_normalizer():
    """The shared WeTextProcessing normaliser, loaded from the wheel's prebuilt FSTs on first call."""
    global _normalizer
    if _normalizer is None:
        with _load_lock:
            if _normalizer is None:
                _normalizer = _load_prebuilt()
    return _normalizer


def normalize_text(text: str) -> str:
    """Spell out numbers, dates, times, money... in Chinese characters; keep everything else for the G2P."""
    text = _prepare(text)
    if not text.strip():
        return text.strip()
    masked = text.translate(_MASK)
    normalizer = get_normalizer()
    with _run_lock:
        normalized = normalizer.normalize(masked)
    # The normaliser's measure-word rule turns 2名 into 两名 even after 第 (第2名 -> 第两名); ordinals are 二.
    return normalized.translate(_UNMASK).replace("第两", "第二").strip()


def _prepare(text: str) -> str:
    text = _UNENCODABLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = _THOUSANDS_GROUP.sub(lambda m: m.group(0).replace(",", ""), text)
    text = text.translate(_FULL_TO_HALF)
    text = _INTL_PHONE.sub(_spell_phone, text)
    text = _EMAIL.sub(_spell_address, text)
    text = _URL.sub(_spell_address, text)
    text = _DOTTED.sub(_spell_dotted, text)
    for pattern, unit in _UNIT_AFTER_NUMBER:
        text = pattern.sub(unit, text)
    text = _HAN_BEFORE_FRACTION.sub(" ", text)
    return _LETTER_HYPHEN_DIGIT.sub(" ", text)


def _spell_address(match: re.Match) -> str:
    """An e-mail address or URL spelled out: symbols as words, digits one by one, letters left for the G2P."""
    address = match.group(0)
    trailer = ""
    while address and address[-1] in _ADDRESS_TRAILER:
        address, trailer = address[:-1], address[-1] + trailer
    spelled = []
    for char in address:
        if char.isdigit():
            spelled.append(char.translate(_PHONE_DIGITS))
        elif char in _ADDRESS_SYMBOLS:
            spelled.append(_ADDRESS_SYMBOLS[char])
        else:
            spelled.append(char)
    return "".join(spelled) + trailer


def _spell_dotted(match: re.Match) -> str:
    """1.2.3 -> 一点二点三, 10.15.7 -> 十点十五点七: parts up to 99 as numbers, longer ones (or with a leading
    zero) digit by digit, as people read version numbers and addresses; YYYY.MM.DD is read as a date."""
    parts = match.group(0).split(".")
    if len(parts) == 3 and len(parts[0]) == 4 and 1 <= int(parts[1]) <= 12 and 1 <= int(parts[2]) <= 31:
        year, month, day = parts  # 2024.03.05 is a date: 二零二四年三月五日
        return f"{''.join(_DIGITS[int(d)] for d in year)}年{_small_number(str(int(month)))}月" \
               f"{_small_number(str(int(day)))}日"
    return "点".join(_small_number(part) for part in parts)


def _small_number(part: str) -> str:
    if len(part) > 2 or (len(part) == 2 and part[0] == "0"):
        return "".join(_DIGITS[int(d)] for d in part)
    value = int(part)
    if value < 10:
        return _DIGITS[value]
    tens, ones = divmod(value, 10)
    return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[ones] if ones else "")


def _spell_phone(match: re.Match) -> str:
    code, number = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    if not 6 <= sum(c.isdigit() for c in number) <= 14:
        return match.group(0)
    groups = [g.translate(_PHONE_DIGITS) for g in re.findall(r"\d+", number)]
    return f"加{code.translate(_PHONE_DIGITS)} " + " ".join(groups)


def _load_prebuilt():
    try:
        from tn.chinese.normalizer import Normalizer
    except ImportError as exc:  # a declared dependency, but pynini wheels are platform-specific
        raise BootError(f"WeTextProcessing is not importable ({exc}); run: pip install WeTextProcessing") from exc

    fst_dir = files("tn")
    missing = [name for name in _FST_FILES if not fst_dir.joinpath(name).is_file()]
    if missing:
        raise BootError(
            f"WeTextProcessing's prebuilt FSTs {missing} are missing from {fst_dir}; "
            "reinstall the wheel (pip install --force-reinstall WeTextProcessing) rather than building them at boot"
        )
    # Same directory the constructor defaults to, spelled out so it is obvious nothing is built or written.
    normalizer = Normalizer(cache_dir=str(fst_dir), overwrite_cache=False)
    log.info("text normaliser loaded from %s", fst_dir)
    return normalizer
