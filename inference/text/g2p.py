"""Grapheme-to-phoneme for the FastSpeech2 Baker voice: normalised Mandarin text -> Baker symbol sequence.

Runs in the worker process and in-process for ``tts-ops synth``.

The encoding is the one TensorFlowTTS's ``BakerProcessor`` trained the model with: ``sil``, then per syllable its
initial (``^`` when it has none) and its final with the tone digit (5 = neutral), ``#0`` between syllables,
``sil``, ``eos``. 今天天气真好 -> sil j in1 #0 t ian1 #0 t ian1 #0 q i4 #0 zh en1 #0 h ao3 sil eos.

Where this goes beyond that processor (which only ever saw clean corpus sentences):
- Pinyin comes from pypinyin (tone-3 style, neutral tone as 5, its phrase dictionary picks polyphone readings:
  银行 hang2, 行走 xing2), with its own sandhi off; the context rules below fix the common polyphones its
  single-character defaults misread, and ``sandhi`` then applies the surface tones over jieba's words
  (``words``), because the Baker labels are surface tones (你好 is labelled ni2 hao3).
- Prosody: in the corpus #3 marks an intonation-phrase boundary (mostly at commas) and sentence ends are silence,
  so ，、：— become ``#3`` and 。！？；… (and the ``.`` the normaliser turns 。into) become ``sil`` in place of ``#0``.
- Erhua: the processor emits ``initial, final+tone, er5`` for an r-suffixed syllable. pypinyin spells 花儿 as
  hua1 + er2, so a 儿 right after another syllable is folded into it unless it belongs to a word where it is a
  real syllable (女儿, 儿子, 婴儿...: WeTextProcessing's own erhua word list). An r-suffixed reading ("huar1",
  from custom pypinyin dictionaries) is split the same way.
- 嗯 (pinyin n / ng) is read en, as the processor does.
- Latin letters and leftover digits are spelled with Mandarin syllables, a few English words and brands are read
  as words (see ``letters``).
- Anything else (emoji, Cyrillic, symbols, characters without a reading, pinyin missing from the model's table)
  is skipped, never an error (one odd character must not fail a request), but never silently either: it is
  logged at INFO with its code point and listed in ``SentenceReading.skipped``. Punctuation is silent by design.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT

from inference.errors import BootError
from inference.text import words
from inference.text.letters import DIGIT_READINGS, LETTER_READINGS, WORD_READINGS, readings_for, word_readings
from inference.text.lexicon import overlay, unreadable
from inference.text.sandhi import apply_sandhi
from tts_vocab.lexicon import Lexicon

log = logging.getLogger("tts_ops.text")

SENTENCE_BREAK = "sil"
CLAUSE_BREAK = "#3"
SYLLABLE_BREAK = "#0"
EOS = "eos"
ERHUA_FINAL = "er5"
_BREAK_STRENGTH = {CLAUSE_BREAK: 1, SENTENCE_BREAK: 2}
_REQUIRED_SYMBOLS = (SENTENCE_BREAK, CLAUSE_BREAK, SYLLABLE_BREAK, EOS, ERHUA_FINAL)
_TONES = "12345"
# Syllabic nasals have no final of their own in the Baker inventory; the processor reads 嗯 as en.
_NASAL_READINGS = {"n": "en", "ng": "en"}

# CJK ideographs, as pypinyin's own RE_HANS, minus its private-use block (no text of ours contains one).
_HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_TOKEN = re.compile(
    rf"""(?P<han>[{_HAN}]+)
       |(?P<latin>[A-Za-z]+(?:-[A-Za-z]+)*)
       |(?P<digit>[0-9])
       |(?P<sentence>[。！？!?；;…\n]|\.(?![A-Za-z0-9]))
       |(?P<clause>[，,、：:—–])
       |(?P<space>\s+)
       |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)

# Contexts where pypinyin's phrase dictionary has no entry and its single-character default is the wrong reading
# of a very common character; the named group "c" is the character to re-read. Each rule names a syntactic
# context (a complement, a measure word, a verb before its object), not a sentence, and was checked against the
# polyphone table (tests/inference/text/polyphone_table.py). g2pM's BiLSTM was measured as the alternative and
# lost to these (see ``inference.text.polyphones``), so they stay rules.
_PRONOUN = r"(?:[我你他她它咱]们?|大家)"
_POLYPHONE_FIXES = (
    # 长 defaults to zhang3 ("grow"); after a degree word it is the adjective chang2 (很长, 这么长, 非常长), unless
    # a result follows (太长大 is rare, 长高/长得 are "grow").
    (re.compile(r"[很太更最挺真好多较够么别常又](?P<c>长)(?![大高得成出胖])"), "chang2"),
    # 觉 after 睡 with up to four characters between is "sleep", jiao4 (睡好觉, 睡了一个好觉, 睡午觉); not in
    # 觉得/觉悟/觉醒 (睡醒后觉得累).
    (re.compile(r"睡[^觉]{0,4}(?P<c>觉)(?![得悟醒察])"), "jiao4"),
    # 地 defaults to di4 ("ground"); after a reduplicated adjective it is the adverbial particle (慢慢地, 高高兴兴地).
    (re.compile(rf"(?P<a>[{_HAN}])(?P=a)(?P<c>地)"), "de5"),
    # 得 defaults to de2 ("obtain"); before a degree/manner complement it is the particle (跑得很快, 写得不好).
    (re.compile(rf"[{_HAN}](?P<c>得)(?=[很太真非更好不挺越多那这特])"), "de5"),
    # 得 as "must" (dei3) after a person and before a verb or adverb (我得走了, 你得去, 你得多穿点); not before
    # 了/到/出, where it is "obtain" (他得了第一名, 他得到).
    (re.compile(rf"{_PRONOUN}(?P<c>得)(?=[走去要快马赶先好多早再把跟给想做学])"), "dei3"),
    # 还 ending a clause is the verb "return" (钱没有还, 借了不还); the adverb hai2 always has something after it.
    (re.compile(r"(?P<c>还)$"), "huan2"),
    # 数 as the verb "count" (shu3) before an aspect particle, 一下, or the one counted (数了, 数一下, 数他最高).
    (re.compile(rf"(?P<c>数)(?=了|着|过|一下|一数|不[清过]|{_PRONOUN})"), "shu3"),
    # 行 as a measure word for lines or a trade (hang2): after a numeral or 这一/那一 (几行字, 三行, 这一行).
    (re.compile(r"(?:[几两三四五六七八九十]|[这那哪每]一)(?P<c>行)"), "hang2"),
    # 着 as a result complement (zhao2) after 不/得: 睡不着, 用不着, 找得着.
    (re.compile(rf"[{_HAN}][不得](?P<c>着)"), "zhao2"),
    # 了 as a potential complement (liao3) in V得了 / V不了 ending a clause or before 这么/那么/吗 (看得了, 受不了).
    (re.compile(rf"[{_HAN}][得不](?P<c>了)(?=$|[吗呢这那多])"), "liao3"),
    # 为 wei2 ("as") after verbs of naming, choosing and changing (选为, 评为, 任命为, 改为, 化为, 变为).
    (re.compile(r"[选评称改译列定封推视命化变转]\s?(?P<c>为)"), "wei2"),
    # 教 with a person or 书 after it is the verb "teach", jiao1 (老师教我们, 教书, 教他游泳); jiao4 stays for the
    # nouns, which the phrase dictionary covers (教育, 教训, 请教).
    (re.compile(rf"(?P<c>教)(?={_PRONOUN}|书|孩子|学生)"), "jiao1"),
    # 调 before a direction of change is "adjust", tiao2 (调低, 调高, 调大, 调小).
    (re.compile(r"(?P<c>调)(?=[高低大小亮暗快慢][一点些]?)"), "tiao2"),
    # 种 before an aspect particle or a crop is the verb "plant", zhong4 (种了, 种树, 种花, 种菜).
    # Not after a demonstrative or numeral, where it is the measure word zhong3 (这种花, 三种菜).
    (re.compile(r"(?<![这那哪各一几某每多两三四五六七八九十])(?P<c>种)(?=[了着过树花菜草田])"), "zhong4"),
    # 处 before 得 is "get along", chu3 (处得很好, 相处得).
    (re.compile(r"(?P<c>处)(?=得)"), "chu3"),
    # 中 after a verb of hitting or guessing is "hit the mark", zhong4 (射中, 猜中, 打中, 考中).
    # Not before 国/间/心/文/学, where 中 starts a noun (打中国队, 考中学).
    (re.compile(r"[射猜打考投](?P<c>中)(?![国间心文学])"), "zhong4"),
    # 量 as the verb "measure", liang2, before 一下/了/着 (量一下体温, 量了身高); not ending a noun (重量过大,
    # 数量了, 质量过关).
    (re.compile(r"(?<![重数质产含流容分能力雨热音用总剂声])(?P<c>量)(?=一下|一量|了|着|过)"), "liang2"),
    # 冲 after a degree word is the adjective "blunt, strong", chong4 (说话很冲, 味道太冲).
    (re.compile(r"[很太真挺特别](?P<c>冲)"), "chong4"),
    # 划 before 线 is "draw (a line)", hua2 (下划线, 划线).
    (re.compile(r"(?P<c>划)(?=线)"), "hua2"),
)
# 地 right after a two-character word (pypinyin's phrases or jieba's dictionary) and before more text is the
# adverbial particle de5 (高兴地笑, 认真地听); the noun di4 after a word is itself part of a word the dictionary
# knows (土地, 各地, 场地), or follows a measure word (这块地, 一片地, 三亩地).
_DE_AFTER_WORD = re.compile(rf"(?<=[{_HAN}][^块片亩处])地(?=[{_HAN}])")

Syllable = tuple[str, ...]
#: [start, end) of the characters of the normalised sentence a symbol was read from (``SentenceReading.owners``).
Span = tuple[int, int]


@dataclass(frozen=True)
class SentenceReading:
    """What the G2P made of one normalised sentence.

    ``symbols``: sil ... sil eos as the model receives them, () when nothing is speakable. ``pinyin``: one entry
    per spoken syllable, tone-3 with the surface tone sent to the model (sandhi applied, 5 = neutral), an erhua
    suffix as its own "er5" entry, letters and digits as the syllables they are spelled with. ``skipped``: the
    characters dropped because the voice cannot read them (emoji, other scripts, symbols, characters without a
    reading), in order; punctuation and whitespace are silent by design and not listed. ``owners``: one per
    symbol, the span of the sentence it was read from (a break: its punctuation mark), None for the framing
    ``sil``/``eos`` and ``#0``; ``inference.text.alignment`` maps the model's durations back to the text with it."""

    symbols: tuple[str, ...]
    pinyin: tuple[str, ...]
    skipped: tuple[str, ...]
    owners: tuple[Span | None, ...] = ()


class BakerG2P:
    """Turns normalised text into Baker symbols, validated against one model's symbol inventory."""

    def __init__(self, mapper: Mapping, lexicon: Lexicon | None = None) -> None:
        #: The operators' pronunciation dictionary, applied before pypinyin and the polyphone rules.
        self.lexicon = lexicon or Lexicon()
        symbol_to_id = mapper.get("symbol_to_id")
        pinyin_dict = mapper.get("pinyin_dict")
        if not isinstance(symbol_to_id, Mapping) or not isinstance(pinyin_dict, Mapping):
            raise BootError("Baker mapper lacks 'symbol_to_id' or 'pinyin_dict'; wrong or corrupt mapper file?")
        self.inventory = frozenset(symbol_to_id)
        self._check_inventory(pinyin_dict)
        self._pinyin = {base: (initial, final) for base, (initial, final) in pinyin_dict.items()}
        # Symbols -> pinyin, for reporting what was sent. Where spellings share symbols (yo/you, ng/en, lue/lve) the
        # one pypinyin writes wins: the longer, then the one with v.
        self._base_of: dict[tuple[str, str], str] = {}
        for base in sorted(self._pinyin, key=lambda b: (-len(b), "v" not in b, b)):
            self._base_of.setdefault(self._pinyin[base], base)
        self._erhua_words = _load_erhua_words()
        self._check_spelling_tables()
        missing = unreadable(self.lexicon, lambda reading: self.syllable(reading) is not None)
        if missing:
            raise BootError(f"pronunciation dictionary: this voice has no symbols for {', '.join(missing)}")

    # -- public --------------------------------------------------------------------------------------------------
    def symbols(self, sentence: str) -> list[str]:
        """The full symbol sequence (sil ... sil eos) for one normalised sentence; [] if nothing is speakable."""
        return list(self.read(sentence).symbols)

    def read(self, sentence: str) -> SentenceReading:
        """Symbols, per-syllable pinyin and skipped characters of one normalised sentence."""
        skipped: list[str] = []
        sequence = [SENTENCE_BREAK]
        owners: list[Span | None] = [None]
        pinyin: list[str] = []
        pending_break: str | None = None
        pending_owner: Span | None = None
        spoken = 0
        for item, span in self._items(sentence, skipped):
            if isinstance(item, str):
                # Breaks before the first syllable or after the last one are covered by the framing sil.
                if spoken and _BREAK_STRENGTH[item] > (_BREAK_STRENGTH[pending_break] if pending_break else 0):
                    pending_break, pending_owner = item, span
                continue
            if spoken:
                sequence.append(pending_break or SYLLABLE_BREAK)
                owners.append(pending_owner if pending_break else None)
            sequence.extend(item)
            owners.extend([span] * len(item))
            pinyin.extend(self._pinyin_of(item))
            spoken += 1
            pending_break = pending_owner = None
        if skipped:
            log.info("skipped characters the voice cannot read: %s",
                     ", ".join(f"U+{ord(char):04X} {char!r}" for char in skipped))
        symbols = (*sequence, SENTENCE_BREAK, EOS) if spoken else ()
        # The closing sil is the pause of the sentence's final punctuation when it has one.
        owners += [pending_owner, None]
        return SentenceReading(symbols, tuple(pinyin), tuple(skipped), tuple(owners) if spoken else ())

    def syllable(self, reading: str) -> Syllable | None:
        """Baker symbols for one tone-3 pinyin reading ("zhi1", "huar1", "n2"), or None if the model lacks it."""
        if len(reading) < 2 or reading[-1] not in _TONES:
            return None
        base, tone = reading[:-1], reading[-1]
        base = _NASAL_READINGS.get(base, base)
        if base in self._pinyin:
            initial, final = self._pinyin[base]
            return (initial, final + tone)
        if base.endswith("r") and base[:-1] in self._pinyin:
            initial, final = self._pinyin[base[:-1]]
            return (initial, final + tone, ERHUA_FINAL)
        return None

    def han_syllables(self, run: str, readings: list[str], skipped: list[str] | None = None,
                      owners: list[Span] | None = None) -> list[Syllable]:
        """Syllables for a run of Chinese characters given pypinyin's readings for it, erhua folded in; characters
        without Baker symbols are appended to ``skipped``, and each syllable's span of ``run`` to ``owners``."""
        spans: list[Span] = [] if owners is None else owners
        real_er = self._real_er_positions(run)
        syllables: list[Syllable] = []
        previous_char = -2  # index of the character the last syllable was read from
        i = 0
        for reading in readings:
            char = run[i] if i < len(run) else ""
            if char == "儿" and i not in real_er and _can_take_erhua(syllables, previous_char == i - 1):
                syllables[-1] = syllables[-1] + (ERHUA_FINAL,)
                spans[-1] = (spans[-1][0], i + 1)
                previous_char, i = i, i + 1
                continue
            syllable = self.syllable(reading)
            if syllable is None:
                log.debug("no Baker symbols for %r (pinyin %r); skipped", char, reading)
                if skipped is not None and char:
                    skipped.append(char)
                i += 1
                continue
            syllables.append(syllable)
            previous_char = i
            # An r-suffixed reading already covers the 儿 written after its character.
            step = 2 if syllable[-1] == ERHUA_FINAL and run[i + 1: i + 2] == "儿" else 1
            spans.append((min(i, len(run) - 1), min(i + step, len(run))))
            i += step
        return syllables

    # -- internals ---------------------------------------------------------------------------------------------
    def _pinyin_of(self, syllable: Syllable) -> list[str]:
        initial, final = syllable[0], syllable[1]
        entries = [self._base_of[(initial, final[:-1])] + final[-1]]
        return entries + [ERHUA_FINAL] if syllable[-1] == ERHUA_FINAL and len(syllable) == 3 else entries

    def _items(self, sentence: str, skipped: list[str]) -> Iterator[tuple[Syllable | str, Span]]:
        """Syllables and break symbols with the span of ``sentence`` each was read from, in reading order;
        unreadable characters are appended to ``skipped``."""
        for match in _TOKEN.finditer(sentence):
            kind, text, start = match.lastgroup, match.group(), match.start()
            if kind == "han":
                spans: list[Span] = []
                syllables = self.han_syllables(text, _pinyin_readings(text, self.lexicon), skipped, spans)
                yield from ((syl, (start + a, start + b)) for syl, (a, b) in zip(syllables, spans, strict=True))
            elif kind in ("latin", "digit"):
                for reading in (word_readings(text) if kind == "latin" else readings_for(text)):
                    syllable = self.syllable(reading)
                    if syllable is not None:  # always: _check_spelling_tables() vetted every spelling at load
                        yield syllable, match.span()
            elif kind == "sentence":
                yield SENTENCE_BREAK, match.span()
            elif kind == "clause":
                yield CLAUSE_BREAK, match.span()
            elif kind == "other" and not unicodedata.category(text).startswith("P"):
                skipped.append(text)

    def _real_er_positions(self, run: str) -> set[int]:
        """Indices of 儿 that are syllables of their own, because they sit inside a word like 女儿 or 儿子."""
        if "儿" not in run:
            return set()
        positions: set[int] = set()
        for word in self._erhua_words:
            start = run.find(word)
            while start != -1:
                positions.update(start + k for k, char in enumerate(word) if char == "儿")
                start = run.find(word, start + 1)
        return positions

    def _check_inventory(self, pinyin_dict: Mapping) -> None:
        missing = [symbol for symbol in _REQUIRED_SYMBOLS if symbol not in self.inventory]
        for base, pair in pinyin_dict.items():
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                missing.append(f"{base}={pair!r}")
                continue
            initial, final = pair
            missing.extend(s for s in [initial, *(final + tone for tone in _TONES)] if s not in self.inventory)
        if missing:
            raise BootError(f"Baker mapper is inconsistent: symbols missing from symbol_to_id: {sorted(set(missing))}")

    def _check_spelling_tables(self) -> None:
        tables = {**LETTER_READINGS, **DIGIT_READINGS, **WORD_READINGS}
        unreadable = [f"{char}:{r}" for char, readings in tables.items() for r in readings if not self.syllable(r)]
        if unreadable:
            raise BootError(f"letter/digit readings missing from the Baker pinyin table: {unreadable}")


def _can_take_erhua(syllables: list[Syllable], adjacent: bool) -> bool:
    """Whether a suffix 儿 can fold into the last syllable: read from the character just before it, and not
    already r-suffixed or an er itself (儿儿 stays two syllables)."""
    if not (adjacent and syllables):
        return False
    last = syllables[-1]
    return last[-1] != ERHUA_FINAL and not last[1].startswith("er")


def _no_readings(chars: str) -> list[str]:
    return [""] * len(chars)


def _pinyin_readings(run: str, lexicon: Lexicon | None = None) -> list[str]:
    """Surface readings of a run of Chinese characters: dictionary readings, polyphone fixes, the operators'
    pronunciation dictionary (``inference.text.lexicon``: its words win and stay one word each), then tone sandhi."""
    readings = lexical_readings(run)
    if len(readings) != len(run):
        return readings
    user = overlay(run, lexicon, words.segment, words.is_word) if lexicon else None
    if user is None:
        return apply_sandhi(run, readings, words.segment(run), words.is_word)
    for position, reading in user.readings.items():
        readings[position] = reading
    return apply_sandhi(run, readings, user.words, user.is_word)


def lexical_readings(run: str) -> list[str]:
    """One reading per character of ``run`` before tone sandhi ("" where pypinyin has none): pypinyin's phrase
    dictionary and single-character defaults, with the polyphone rules above applied."""
    # Dictionary tones (pypinyin's own sandhi off: it only works inside its phrase segments); ``sandhi`` applies
    # the surface tones once, over the whole run.
    readings = lazy_pinyin(
        run,
        style=Style.TONE3,
        neutral_tone_with_five=True,
        tone_sandhi=False,
        errors=_no_readings,  # type: ignore[arg-type]  # pypinyin takes a list (one per character); its stub: str
    )
    if len(readings) != len(run):
        return readings
    for pattern, reading in _POLYPHONE_FIXES:
        for match in pattern.finditer(run):
            readings[match.start("c")] = reading
    for match in _DE_AFTER_WORD.finditer(run):
        before, after = run[match.start() - 2:match.start()], run[match.start():match.start() + 2]
        if (_is_word(before) or words.is_word(before)) and not (_is_word(after) or words.is_word(after)):
            readings[match.start()] = "de5"
    return readings


def _is_word(text: str) -> bool:
    """Whether ``text`` is in pypinyin's phrase dictionary (the polyphone rules ask; sandhi asks the segmenter)."""
    return text in PHRASES_DICT


def _load_erhua_words() -> frozenset[str]:
    """WeTextProcessing's list of words whose 儿 is not erhua (女儿, 儿子...), shipped in its wheel."""
    path = files("tn") / "chinese" / "data" / "erhua" / "whitelist.tsv"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BootError(f"WeTextProcessing's erhua word list is missing ({exc}); reinstall WeTextProcessing") from exc
    return frozenset(word for word in (line.split("\t")[0].strip() for line in lines) if "儿" in word)
