"""Timestamps benchmark: what ``"timestamps": true`` costs on the bundled voice, in process.

Usage::

    python bench/timestamps.py [--repeat 3] [--lengths 50 200 1000] [--store-dir DIR]

Per text length (cut from the fixed paragraph ``bench/engine.py`` uses): the median seconds of
``Engine.synthesize`` and of ``Engine.synthesize_timed`` (the same synthesis plus reading the model's duration
output, aligning it to the text and word segmentation), the difference in percent, and the size of the timings'
JSON as the worker sends it (bytes per character of text). One thread; runs alternate so that drift on a shared
machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

from engine import text_of_length  # bench/ is on sys.path when run as python bench/timestamps.py

from inference.engines import create_engine
from inference.engines.base import SynthesisParams


def measure(engine, text: str, repeat: int) -> tuple[float, float, int]:
    plain, timed = [], []
    size = 0
    for _ in range(repeat):
        start = time.perf_counter()
        engine.synthesize(text, SynthesisParams())
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        _, timings = engine.synthesize_timed(text, SynthesisParams())
        timed.append(time.perf_counter() - start)
        size = len(json.dumps(timings.to_wire(), ensure_ascii=False, separators=(",", ":")).encode())
    return statistics.median(plain), statistics.median(timed), size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per length (median reported)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 200, 1000], help="text lengths (chars)")
    parser.add_argument("--store-dir", default=None, help="model store (default: $TTS_OPS_MODEL_DIR or cache)")
    args = parser.parse_args(argv)
    engine = create_engine("fastspeech2-baker", store_dir=args.store_dir, threads=1)
    engine.load()
    engine.warm_up()
    print(f"# timestamps cost, fastspeech2-baker, 1 thread, median of {args.repeat}; "
          f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}")
    print("| chars | synthesize s | synthesize_timed s | overhead | timings JSON bytes/char |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for length in args.lengths:
        text = text_of_length(length)
        plain, timed, size = measure(engine, text, args.repeat)
        print(f"| {length} | {plain:.3f} | {timed:.3f} | {100 * (timed - plain) / plain:+.1f}% | "
              f"{size / len(text):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
