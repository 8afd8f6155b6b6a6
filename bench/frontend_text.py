"""Text-frontend benchmark: time of ``MandarinFrontend.encode`` per 1,000 characters of input.

Usage::

    python bench/frontend_text.py [--repeat 5] [--store-dir DIR]

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store-dir", default=None)
    args = parser.parse_args(argv)
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
    print(f"{'text':<6} {'chars':>6} {'chunks':>6} {'ms / 1000 chars':>16}")
    for name, seed in (("prose", PARAGRAPH), ("mixed", MIXED)):
        text = build_text(seed)
        per_1000, chunks = time_encode(frontend, text, args.repeat)
        print(f"{name:<6} {len(text):>6} {chunks:>6} {per_1000:>16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
