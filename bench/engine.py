"""Engine benchmark: load time, warm-up time, real-time factor per text length, and peak memory.

Usage::

    python bench/engine.py [--threads 1 2] [--repeat 3] [--engine fastspeech2-baker] [--store-dir DIR]

Each thread count runs in a fresh subprocess, so its load time is cold for that process and its peak RSS is
its own (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which is never reset within a process). The real-time
factor is synthesis seconds / audio seconds of ``Engine.synthesize`` (text frontend + acoustic model + vocoder +
chunk joining, no encoding); below 1 is faster than real time. Texts are cut from one fixed paragraph of natural
Mandarin with punctuation, so runs are comparable across machines and commits. Figures are medians of
``--repeat`` runs. The model comes from the model store (``$TTS_OPS_MODEL_DIR`` or the per-user cache) and is
pulled on first use if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from inference.text.samples import PARAGRAPH  # shared with the tests

BUCKETS = (10, 50, 200, 1000)
PUNCTUATION = "，、；：。！？"


def text_of_length(chars: int) -> str:
    """Exactly ``chars`` characters from the paragraph (repeated as needed), ending with a full stop."""
    text = (PARAGRAPH * (chars // len(PARAGRAPH) + 1))[:chars]
    if text[-1] not in "。！？":
        text = text[:-1] + "。"
    if len(text) > 2 and text[-2] in PUNCTUATION:  # avoid "，。": end on a character instead
        text = text[:-2] + "好。"
    return text


# -- child: one thread count in this process ------------------------------------------------------------------------


def run_child(engine_id: str, threads: int, repeat: int, store_dir: str | None) -> dict:
    import logging
    import resource

    import psutil

    logging.basicConfig(level=logging.WARNING)
    # WeTextProcessing adds its own INFO handler unless the logger already has one.
    logging.getLogger("wetext").addHandler(logging.NullHandler())
    logging.getLogger("wetext").setLevel(logging.WARNING)

    from inference.engines import create_engine
    from inference.engines.base import SynthesisParams

    rss_start = psutil.Process().memory_info().rss
    start = time.perf_counter()
    engine = create_engine(engine_id, store_dir=Path(store_dir) if store_dir else None, threads=threads)
    engine.load()
    load_s = time.perf_counter() - start
    rss_loaded = psutil.Process().memory_info().rss
    warmup_s = engine.warm_up()
    info = engine.info()

    params = SynthesisParams()
    buckets = []
    for chars in BUCKETS:
        text = text_of_length(chars)
        runs = []
        for _ in range(repeat):
            start, cpu_start = time.perf_counter(), time.process_time()
            samples = engine.synthesize(text, params)
            seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
            audio_s = samples.size / info.sample_rate
            runs.append((seconds, audio_s, seconds / audio_s, cpu_s / audio_s))
        buckets.append({
            "chars": len(text),
            "chunks": len(engine.split(text)),
            "synth_s": statistics.median(run[0] for run in runs),
            "audio_s": statistics.median(run[1] for run in runs),
            "rtf": statistics.median(run[2] for run in runs),
            "rtf_min": min(run[2] for run in runs),
            "rtf_max": max(run[2] for run in runs),
            "cpu_rtf": statistics.median(run[3] for run in runs),
        })
    return {
        "threads": threads, "engine": info.id, "model_version": info.model_version,
        "sample_rate": info.sample_rate, "load_s": load_s, "warmup_s": warmup_s,
        "rss_start_mb": rss_start / 2**20, "rss_loaded_mb": rss_loaded / 2**20,
        # Linux reports ru_maxrss in KiB.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "buckets": buckets,
    }


# -- parent: one subprocess per thread count, then the tables ---------------------------------------------------------


def measure(engine_id: str, threads: int, repeat: int, store_dir: str | None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--engine", engine_id, "--threads", str(threads),
           "--repeat", str(repeat)]
    if store_dir:
        cmd += ["--store-dir", store_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"benchmark with {threads} thread(s) failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))

    return "\n".join([line(header), "  ".join("-" * width for width in widths), *map(line, rows)])


def report(results: list[dict], repeat: int) -> str:
    first = results[0]
    lines = [
        f"engine {first['engine']} {first['model_version']} ({first['sample_rate']} Hz), "
        f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, "
        f"median of {repeat} run(s) per text",
        "",
        table(["threads", "load s", "warm-up s", "RSS before MB", "RSS loaded MB", "peak RSS MB"],
              [[str(r["threads"]), f"{r['load_s']:.2f}", f"{r['warmup_s']:.2f}", f"{r['rss_start_mb']:.0f}",
                f"{r['rss_loaded_mb']:.0f}", f"{r['peak_rss_mb']:.0f}"] for r in results]),
        "",
        "real-time factor = synthesis s / audio s (lower is faster; < 1 is faster than real time); CPU RTF = process"
        " CPU s / audio s (all threads), which a busy shared machine disturbs less than wall time",
        table(["threads", "chars", "chunks", "audio s", "synth s", "RTF", "RTF min-max", "CPU RTF", "x real time"],
              [[str(r["threads"]), str(b["chars"]), str(b["chunks"]), f"{b['audio_s']:.2f}", f"{b['synth_s']:.3f}",
                f"{b['rtf']:.3f}", f"{b['rtf_min']:.3f}-{b['rtf_max']:.3f}", f"{b['cpu_rtf']:.3f}",
                f"{1 / b['rtf']:.0f}x"]
               for r in results for b in r["buckets"]]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare")
    parser.add_argument("--repeat", type=int, default=3, help="runs per text length (median reported)")
    parser.add_argument("--engine", default="fastspeech2-baker", help="engine id")
    parser.add_argument("--store-dir", default=None, help="model store (default: $TTS_OPS_MODEL_DIR or cache)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or any(t < 1 for t in args.threads):
        parser.error("--repeat and --threads must be >= 1")

    if args.child:
        print(json.dumps(run_child(args.engine, args.threads[0], args.repeat, args.store_dir)))
        return 0
    results = []
    for threads in args.threads:
        print(f"measuring {threads} thread(s)...", file=sys.stderr, flush=True)
        results.append(measure(args.engine, threads, args.repeat, args.store_dir))
    print(report(results, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
