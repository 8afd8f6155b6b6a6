"""The operators' pronunciation dictionary (``engines.fastspeech2_baker.lexicon``): its file format, parsed and
validated once (all processes: the daemon validates it at start and on HUP, the worker loads what the daemon
validated, ``tts-ops serve --check`` reports its bad lines).

One entry per line, ``词<TAB>pinyin with tones``: a word of Chinese characters, a tab, one tone-numbered pinyin
syllable per character separated by spaces (``行长\thang2 zhang3``; tone 5 = neutral, ``ü`` written ``v``).
Blank lines and lines starting with ``#`` are ignored. Every bad line is named with its line number, so an
operator fixes them all in one pass. A word listed twice keeps its last reading (a later line overrides an
earlier one, as an operator appending a fix expects).

Syllables are checked against ``PINYIN_SYLLABLES``, the readings pypinyin's character dictionary uses (a test
keeps the two equal); the worker checks them once more against the loaded voice's own inventory.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Lexicon", "LexiconError", "PINYIN_SYLLABLES", "is_syllable", "load_lexicon", "parse_lexicon"]

#: Toneless pinyin syllables (ü as v): every base reading of pypinyin's character dictionary, including the
#: interjections hm, hng, m, n, ng.
PINYIN_SYLLABLES = frozenset("""
a ai an ang ao ba bai ban bang bao bei ben beng bi bian biang biao bie bin bing bo bong bu ca cai can cang cao
ce cei cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai chuan chuang chui chun
chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de dei den deng di dia dian diao die din ding diu
dong dou du duan dui dun duo e ei en eng er fa fan fang fei fen feng fiao fo fou fu ga gai gan gang gao ge gei
gen geng gong gou gu gua guai guan guang gui gun guo ha hai han hang hao he hei hen heng hm hng hong hou hu
hua huai huan huang hui hun huo ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai kan kang
kao ke kei ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai lan lang lao le lei len leng li lia
lian liang liao lie lin ling liu lo long lou lu luan lun luo lv lve m ma mai man mang mao me mei men meng mi
mian miao mie min ming miu mo mou mu n na nai nan nang nao ne nei nen neng ng ni nia nian niang niao nie nin
ning niu nong nou nu nuan nun nuo nv nve o ou pa pai pan pang pao pei pen peng pi pian piao pie pin ping po
pou pu qi qia qian qiang qiao qie qin qing qiong qiu qu quan que qun ran rang rao re ren reng ri rong rou ru
rua ruan rui run ruo sa sai san sang sao se sen seng sha shai shan shang shao she shei shen sheng shi shou shu
shua shuai shuan shuang shui shun shuo si song sou su suan sui sun suo ta tai tan tang tao te tei teng ti tian
tiao tie ting tong tou tu tuan tui tun tuo wa wai wan wang wei wen weng wo wong wu xi xia xian xiang xiao xie
xin xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin ying yo yong you yu yuan yue yun za zai zan zang
zao ze zei zen zeng zha zhai zhan zhang zhao zhe zhei zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang
zhui zhun zhuo zi zong zou zu zuan zui zun zuo
""".split())
TONES = "12345"
#: A word: CJK ideographs only (what the G2P reads as one run; pypinyin's RE_HANS without its private-use block).
_WORD = re.compile("[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
#: Longest word an entry may hold (a product name, a person's full name; longer is surely a pasted sentence).
MAX_WORD_CHARS = 16


class LexiconError(ValueError):
    """A lexicon that cannot be used: ``problems`` names every bad line (``line 3: ...``) or the unreadable file."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"pronunciation dictionary {source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


@dataclass(frozen=True)
class Lexicon:
    """The entries of one dictionary: word -> one tone-numbered syllable per character."""

    entries: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """First 12 hex digits of the sha256 of the entries (not the file: comments and order do not count), the
        tag that makes a changed dictionary a new model version for the cache key."""
        canonical = json.dumps(sorted(self.entries.items()), ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    @property
    def longest(self) -> int:
        return max((len(word) for word in self.entries), default=0)

    def __len__(self) -> int:
        return len(self.entries)


def is_syllable(reading: str) -> bool:
    """Whether ``reading`` is a toneless pinyin syllable plus a tone digit 1-5 (``hang2``, ``lv4``, ``de5``)."""
    return len(reading) >= 2 and reading[-1] in TONES and reading[:-1] in PINYIN_SYLLABLES


def _entry(line: str) -> tuple[str, tuple[str, ...]]:
    """The (word, readings) of one non-comment line; ValueError saying what is wrong with it."""
    word, tab, pinyin = line.partition("\t")
    word = word.strip()
    if not tab:
        raise ValueError("expected '<word><TAB><pinyin>' (no tab)")
    if not _WORD.fullmatch(word):
        raise ValueError(f"word {word!r} must be Chinese characters only")
    if len(word) > MAX_WORD_CHARS:
        raise ValueError(f"word {word!r} is longer than {MAX_WORD_CHARS} characters")
    readings = tuple(pinyin.lower().replace("ü", "v").split())
    bad = [r for r in readings if not is_syllable(r)]
    if bad:
        raise ValueError(f"not tone-numbered pinyin syllables (e.g. hang2, lv4, de5): {' '.join(bad)}")
    if len(readings) != len(word):
        raise ValueError(f"{len(word)} characters in {word!r} but {len(readings)} syllables")
    return word, readings


def parse_lexicon(text: str, source: str = "<text>") -> Lexicon:
    """The dictionary in ``text``; LexiconError naming every bad line with its number."""
    entries: dict[str, tuple[str, ...]] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip(" \r\ufeff")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            word, readings = _entry(line)
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        entries[word] = readings
    if problems:
        raise LexiconError(source, problems)
    return Lexicon(entries)


def load_lexicon(path: Path) -> Lexicon:
    """The dictionary in the UTF-8 file ``path``; LexiconError when it cannot be read or has bad lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LexiconError(str(path), [f"cannot read it: {exc}"]) from None
    return parse_lexicon(text, str(path))
