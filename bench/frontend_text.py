"""Text-frontend benchmark: time of ``MandarinFrontend.encode`` per 1,000 characters of input.

Usage::

    python bench/frontend_text.py [--repeat 5] [--store-dir DIR]
    python bench/frontend_text.py --polyphones

``--polyphones`` prints instead the accuracy of each polyphone method on the hand-checked tables in
tests/inference/text/polyphone_table.py (the rule-writing table and the two held-out ones): pypinyin alone, the
shipped frontend (pypinyin plus its context rules), g2pM's BiLSTM on every polyphonic character, and pypinyin's
phrase-dictionary words with g2pM elsewhere. Run it from the repository root.

Measures the Mandarin frontend alone (chunking, text normalisation, polyphones, tone sandhi, G2P, ids), no
acoustic model and no vocoder, on two fixed texts so runs are comparable across commits:

- ``prose``: the shared sample paragraph of natural Mandarin (no digits, no Latin letters), repeated to 3,000
  characters;
- ``mixed``: sentences with numbers, dates, money, units, e-mail addresses, URLs, English words and acronyms
  (the normaliser's heavy paths), repeated to 3,000 characters.

The frontend is built once (its load time is printed separately) and one warm-up pass runs before timing.
Figures are the median of ``--repeat`` passes, as milliseconds per 1,000 input characters. A script, not a
test: it prints figures and judges nothing. The Baker mapper comes from the model store (pulled if missing).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import time
from pathlib import Path

from inference.text.samples import PARAGRAPH

MIXED = (
    "2024年3月5日下午3:30，气温约-5℃，风速12m/s。"
    "这台笔记本电脑售价¥6,999.50，内存16GB，电池5000mAh，比去年便宜了约1/3。"
    "请发邮件到zhang.san2024@example.com或访问https://www.example.com/docs查看。"
    "打开App连上Wi-Fi，然后点OK就可以了，USB接口在左边。"
    "本次活动大约有3-5天，超过80%的用户表示满意，第1名奖励1000元。"
)
TARGET_CHARS = 3000


def build_text(seed: str) -> str:
    return (seed * (TARGET_CHARS // len(seed) + 1))[:TARGET_CHARS]


def load_mapper(store_dir: str | None) -> dict:
    from inference.models.store import ModelStore, default_store_dir

    store = ModelStore(Path(store_dir) if store_dir else default_store_dir())
    path = store.ensure("fastspeech2-baker")
    return json.loads((path / "baker_mapper.json").read_text(encoding="utf-8"))


def time_encode(frontend, text: str, repeat: int) -> tuple[float, int]:
    chunks = frontend.encode(text)  # warm-up (pypinyin's phrase dictionary, caches)
    passes = []
    for _ in range(repeat):
        start = time.perf_counter()
        frontend.encode(text)
        passes.append(time.perf_counter() - start)
    return statistics.median(passes) * 1000 * 1000 / len(text), len(chunks)


def time_g2p(frontend, text: str, repeat: int) -> float:
    """The G2P stage alone (polyphones, sandhi, symbols) on already-normalised chunks, ms per 1,000 characters:
    the normaliser dominates ``encode`` and is noisy on a loaded machine, so this isolates the part we change."""
    from inference.text.chunking import split_chunks

    normalized = [frontend.normalize(piece) for piece in split_chunks(text)]
    passes = []
    for _ in range(repeat):
        start = time.perf_counter()
        for sentence in normalized:
            frontend.phonemes(sentence)
        passes.append(time.perf_counter() - start)
    return statistics.median(passes) * 1000 * 1000 / len(text)


def polyphone_accuracy() -> None:
    import re

    from pypinyin import Style, lazy_pinyin

    from inference.text import g2p, polyphones, words
    from tests.inference.text.polyphone_table import HELD_OUT_2_TABLE, HELD_OUT_TABLE, POLYPHONE_TABLE, parse

    han = re.compile(f"[{g2p._HAN}]+")
    model = polyphones.get_model()

    def pypinyin_alone(run: str) -> list[str]:
        return lazy_pinyin(run, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=False,
                           errors=g2p._no_readings)  # type: ignore[arg-type]

    def g2pm_alone(run: str) -> list[str]:
        readings = pypinyin_alone(run)
        for i, reading in model.predict(run).items():
            readings[i] = reading
        return readings

    def words_then_g2pm(run: str) -> list[str]:
        return polyphones.resolve(run, pypinyin_alone(run), words.segment(run), g2p._is_word, model)

    methods = {"pypinyin alone": pypinyin_alone, "shipped (pypinyin + rules)": g2p.lexical_readings,
               "g2pM alone": g2pm_alone, "dictionary words, g2pM elsewhere": words_then_g2pm}
    print(f"{'method':<34} {'rule table':>12} {'held-out':>10} {'held-out 2':>11}")
    for name, method in methods.items():
        scores = []
        for table in (POLYPHONE_TABLE, HELD_OUT_TABLE, HELD_OUT_2_TABLE):
            right = 0
            for marked, expected in table:
                sentence, index = parse(marked)
                run = next(m for m in han.finditer(sentence) if m.start() <= index < m.end())
                right += method(run.group())[index - run.start()] == expected
            scores.append(f"{right}/{len(table)}")
        print(f"{name:<34} {scores[0]:>12} {scores[1]:>10} {scores[2]:>11}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store-dir", default=None)
    parser.add_argument("--polyphones", action="store_true", help="polyphone accuracy per method instead of timing")
    args = parser.parse_args(argv)
    if args.polyphones:
        polyphone_accuracy()
        return 0
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("wetext").addHandler(logging.NullHandler())
    logging.getLogger("wetext").setLevel(logging.WARNING)

    mapper = load_mapper(args.store_dir)
    start = time.perf_counter()
    from inference.text import MandarinFrontend

    frontend = MandarinFrontend(mapper)
    load_s = time.perf_counter() - start
    print(f"frontend load {load_s:.2f} s; Python {platform.python_version()} on {platform.machine()}, "
          f"median of {args.repeat} pass(es)")
    print(f"{'text':<6} {'chars':>6} {'chunks':>6} {'ms / 1000 chars':>16} {'of which G2P':>13}")
    for name, seed in (("prose", PARAGRAPH), ("mixed", MIXED)):
        text = build_text(seed)
        per_1000, chunks = time_encode(frontend, text, args.repeat)
        g2p_per_1000 = time_g2p(frontend, text, args.repeat)
        print(f"{name:<6} {len(text):>6} {chunks:>6} {per_1000:>16.1f} {g2p_per_1000:>13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
