"""Grapheme-to-phoneme for the FastSpeech2 Baker voice: normalised Mandarin text -> Baker symbol sequence.

Runs in the worker process and in-process for ``tts-ops synth``.

The encoding is the one TensorFlowTTS's ``BakerProcessor`` trained the model with: ``sil``, then per syllable its
initial (``^`` when it has none) and its final with the tone digit (5 = neutral), ``#0`` between syllables,
``sil``, ``eos``. 今天天气真好 -> sil j in1 #0 t ian1 #0 t ian1 #0 q i4 #0 zh en1 #0 h ao3 sil eos.

Where this goes beyond that processor (which only ever saw clean corpus sentences):
- Pinyin comes from pypinyin (tone-3 style, neutral tone as 5, its phrase dictionary picks polyphone readings:
  银行 hang2, 行走 xing2) with pypinyin's tone sandhi on, because the Baker labels are surface tones
  (你好 is labelled ni2 hao3).
- Prosody: in the corpus #3 marks an intonation-phrase boundary (mostly at commas) and sentence ends are silence,
  so ，、：— become ``#3`` and 。！？；… (and the ``.`` the normaliser turns 。into) become ``sil`` in place of ``#0``.
- Erhua: the processor emits ``initial, final+tone, er5`` for an r-suffixed syllable. pypinyin spells 花儿 as
  hua1 + er2, so a 儿 right after another syllable is folded into it unless it belongs to a word where it is a
  real syllable (女儿, 儿子, 婴儿...: WeTextProcessing's own erhua word list). An r-suffixed reading ("huar1",
  from custom pypinyin dictionaries) is split the same way.
- 嗯 (pinyin n / ng) is read en, as the processor does.
- Latin letters and leftover digits are spelled with Mandarin syllables (see ``letters``).
- Anything else (emoji, Cyrillic, symbols, characters without a reading, pinyin missing from the model's table)
  is dropped with a debug log, never an error: one odd character must not fail a request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from importlib.resources import files

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT
from pypinyin.seg.mmseg import seg as _mmseg

from inference.errors import BootError
from inference.text.letters import DIGIT_READINGS, LETTER_READINGS, readings_for
from inference.text.sandhi import apply_sandhi

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
       |(?P<ascii>[A-Za-z0-9])
       |(?P<sentence>[。！？!?；;…\n]|\.(?![A-Za-z0-9]))
       |(?P<clause>[，,、：:—–])
       |(?P<space>\s+)
       |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)

# Contexts where pypinyin's phrase dictionary has no entry and its single-character default is the wrong reading
# of a very common character; the named group "c" is the character to re-read. Kept deliberately small: this is
# not a polyphone model, only the misreadings that are frequent in ordinary prose.
_POLYPHONE_FIXES = (
    # 长 defaults to zhang3 ("grow"); after a degree word it is the adjective chang2 (很长, 这么长, 非常长), unless
    # a result follows (太长大 is rare, 长高/长得 are "grow").
    (re.compile(r"[很太更最挺真好多较够么别常](?P<c>长)(?![大高得成出胖])"), "chang2"),
    # 地 defaults to di4 ("ground"); after a reduplicated adjective it is the adverbial particle (慢慢地, 高高兴兴地).
    (re.compile(rf"(?P<a>[{_HAN}])(?P=a)(?P<c>地)"), "de5"),
    # 得 defaults to de2 ("obtain"); before a degree/manner complement it is the particle (跑得很快, 写得不好).
    (re.compile(rf"[{_HAN}](?P<c>得)(?=[很太真非更好不挺越多那这特])"), "de5"),
    # 得 as "must" (dei3) after a person and before a verb of going/doing (我得走了, 你得去, 咱们得快点).
    (re.compile(r"(?:[我你他她它]|[我你他她它咱]们)(?P<c>得)(?=[走去要快马赶先好])"), "dei3"),
)

Syllable = tuple[str, ...]


class BakerG2P:
    """Turns normalised text into Baker symbols, validated against one model's symbol inventory."""

    def __init__(self, mapper: Mapping) -> None:
        symbol_to_id = mapper.get("symbol_to_id")
        pinyin_dict = mapper.get("pinyin_dict")
        if not isinstance(symbol_to_id, Mapping) or not isinstance(pinyin_dict, Mapping):
            raise BootError("Baker mapper lacks 'symbol_to_id' or 'pinyin_dict'; wrong or corrupt mapper file?")
        self.inventory = frozenset(symbol_to_id)
        self._check_inventory(pinyin_dict)
        self._pinyin = {base: (initial, final) for base, (initial, final) in pinyin_dict.items()}
        self._erhua_words = _load_erhua_words()
        self._check_spelling_tables()

    # -- public --------------------------------------------------------------------------------------------------
    def symbols(self, sentence: str) -> list[str]:
        """The full symbol sequence (sil ... sil eos) for one normalised sentence; [] if nothing is speakable."""
        sequence = [SENTENCE_BREAK]
        pending_break: str | None = None
        spoken = 0
        for item in self._items(sentence):
            if isinstance(item, str):
                # Breaks before the first syllable or after the last one are covered by the framing sil.
                if spoken and _BREAK_STRENGTH[item] > (_BREAK_STRENGTH[pending_break] if pending_break else 0):
                    pending_break = item
                continue
            if spoken:
                sequence.append(pending_break or SYLLABLE_BREAK)
            sequence.extend(item)
            spoken += 1
            pending_break = None
        if not spoken:
            return []
        return sequence + [SENTENCE_BREAK, EOS]

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

    def han_syllables(self, run: str, readings: list[str]) -> list[Syllable]:
        """Syllables for a run of Chinese characters given pypinyin's readings for it, erhua folded in."""
        real_er = self._real_er_positions(run)
        syllables: list[Syllable] = []
        previous_char = -2  # index of the character the last syllable was read from
        i = 0
        for reading in readings:
            char = run[i] if i < len(run) else ""
            if char == "儿" and i not in real_er and _can_take_erhua(syllables, previous_char == i - 1):
                syllables[-1] = syllables[-1] + (ERHUA_FINAL,)
                previous_char, i = i, i + 1
                continue
            syllable = self.syllable(reading)
            if syllable is None:
                log.debug("no Baker symbols for %r (pinyin %r); skipped", char, reading)
                i += 1
                continue
            syllables.append(syllable)
            previous_char = i
            # An r-suffixed reading already covers the 儿 written after its character.
            i += 2 if syllable[-1] == ERHUA_FINAL and run[i + 1: i + 2] == "儿" else 1
        return syllables

    # -- internals ---------------------------------------------------------------------------------------------
    def _items(self, sentence: str) -> Iterator[Syllable | str]:
        """Syllables and break symbols, in reading order."""
        dropped = []
        for match in _TOKEN.finditer(sentence):
            kind, text = match.lastgroup, match.group()
            if kind == "han":
                yield from self.han_syllables(text, _pinyin_readings(text))
            elif kind == "ascii":
                for reading in readings_for(text):
                    syllable = self.syllable(reading)
                    if syllable is not None:  # always: _check_spelling_tables() vetted every spelling at load
                        yield syllable
            elif kind == "sentence":
                yield SENTENCE_BREAK
            elif kind == "clause":
                yield CLAUSE_BREAK
            elif kind == "other":
                dropped.append(text)
        if dropped:
            log.debug("dropped characters the voice cannot read: %r", "".join(dropped))

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
        tables = {**LETTER_READINGS, **DIGIT_READINGS}
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


def _pinyin_readings(run: str) -> list[str]:
    # One reading per character: characters pypinyin cannot read get "" so the alignment with the run holds.
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
    return apply_sandhi(run, readings, segment(run), _is_word)


def segment(run: str) -> list[str]:
    """pypinyin's word segmentation of a run of Chinese characters (forward maximum matching on its phrases)."""
    return list(_mmseg.cut(run))


def _is_word(text: str) -> bool:
    return text in PHRASES_DICT


def _load_erhua_words() -> frozenset[str]:
    """WeTextProcessing's list of words whose 儿 is not erhua (女儿, 儿子...), shipped in its wheel."""
    path = files("tn") / "chinese" / "data" / "erhua" / "whitelist.tsv"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BootError(f"WeTextProcessing's erhua word list is missing ({exc}); reinstall WeTextProcessing") from exc
    return frozenset(word for word in (line.split("\t")[0].strip() for line in lines) if "儿" in word)
