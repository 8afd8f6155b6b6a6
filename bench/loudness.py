"""Loudness bench for the worker's normalisation (``inference.loudness``, ``audio.loudness_lufs``): integrated
loudness (ITU-R BS.1770, pyloudnorm) of the bundled voice per emotion and per speed, as the engine renders it and
after the worker's normalisation, with the worst deviation from the target and the highest peak.

    python bench/loudness.py [--target -16] [--sentences 5] [--store-dir DIR]

Each cell is the mean over ``--sentences`` fixed sentences cut from ``inference.text.samples.PARAGRAPH`` at its
full stops; "dev" is the largest |LUFS - target| of any single answer, "peak" the largest |sample| (dBFS).
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from inference.engines import EMOTIONS, create_engine
from inference.engines.base import SynthesisParams
from inference.loudness import integrated_loudness, normalize_loudness
from inference.text.samples import PARAGRAPH

SPEEDS = (0.5, 0.75, 1.0, 1.5, 2.0)


def sentences(count: int) -> list[str]:
    parts = [p + "。" for p in PARAGRAPH.replace("！", "。").replace("？", "。").split("。") if len(p) >= 6]
    return parts[:count]


def dbfs(value: float) -> float:
    return 20 * math.log10(max(value, 1e-9))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=-16.0, help="target loudness, LUFS")
    parser.add_argument("--sentences", type=int, default=5)
    parser.add_argument("--store-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    engine = create_engine("fastspeech2-baker", store_dir=args.store_dir, threads=1)
    engine.load()
    engine.warm_up()
    rate = engine.info().sample_rate
    texts = sentences(args.sentences)
    print(f"# {platform.machine()} {platform.python_version()}, pyloudnorm {metadata.version('pyloudnorm')}, "
          f"{engine.info().id} {engine.info().model_version}, {len(texts)} sentences, target {args.target:g} LUFS")
    print(f"{'case':<16} {'raw LUFS':>9} {'raw peak':>9} {'out LUFS':>9} {'out dev':>8} {'out peak':>9}")
    started = time.monotonic()
    raw_all, out_all, worst = [], [], 0.0
    cases = [(e, 1.0) for e in EMOTIONS] + [("neutral", s) for s in SPEEDS if s != 1.0]
    for emotion, speed in cases:
        raw_l, out_l, raw_p, out_p = [], [], [], []
        for text in texts:
            samples = engine.synthesize(text, SynthesisParams.build(emotion, speed, None))
            leveled = normalize_loudness(samples, rate, args.target)
            raw_l.append(integrated_loudness(samples, rate))
            out_l.append(integrated_loudness(leveled, rate))
            raw_p.append(float(np.abs(samples).max()))
            out_p.append(float(np.abs(leveled).max()))
        dev = max(abs(v - args.target) for v in out_l)
        worst = max(worst, dev)
        raw_all.append(statistics.fmean(raw_l))
        out_all.append(statistics.fmean(out_l))
        print(f"{emotion + ' x' + format(speed, 'g'):<16} {raw_all[-1]:9.2f} {dbfs(max(raw_p)):9.2f} "
              f"{out_all[-1]:9.2f} {dev:8.2f} {dbfs(max(out_p)):9.2f}")
    print(f"spread of the means: raw {max(raw_all) - min(raw_all):.2f} dB, normalised "
          f"{max(out_all) - min(out_all):.2f} dB; worst single answer {worst:.2f} dB from the target "
          f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
