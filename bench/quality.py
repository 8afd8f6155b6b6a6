"""Quality bench for the bundled voice: predicted MOS (Distill-MOS) per emotion and per speed, loudness, prosody
features and a leave-one-sentence-out nearest-centroid emotion classification.

    python bench/quality.py [--quick] [--sentences N] [--presets FILE.json] [--normalized] [--speeds-only]
                            [--json OUT]

Measures the engine as it is (its presets, or those of ``--presets``, a JSON object emotion -> preset keys, for
tuning runs). ``--quick`` takes every third sentence (8) for iteration; the README's table is the full run.
Loudness is the raw output's (ITU-R BS.1770 integrated LUFS, pyloudnorm); ``--normalized`` also scores each
rendering after normalising it to NORMALIZED_LUFS (what a loudness-normalising output would deliver).
The MOS model is loaded once; everything runs on ``--threads`` CPU threads. The README's "before" table is this
file run against the engine before the re-tuning: ``git archive b76841d | tar -x -C DIR``, copy this file to
``DIR/bench/``, then ``cd DIR && PYTHONPATH=$PWD python bench/quality.py``.
Needs the quality extra (CPU torch, distillmos), pyloudnorm and librosa (the test extra).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import median_filter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.engines import EMOTIONS, create_engine
from inference.engines.base import SynthesisParams
from inference.engines.fastspeech2 import PEAK_LIMIT, SAMPLE_RATE

try:
    from inference.prosody import MODEL_DURATION_RANGE
except ImportError:  # the engine before the re-tuning (run this file against an old checkout to measure it)
    MODEL_DURATION_RANGE = None

RATE = SAMPLE_RATE
SPEEDS = (0.5, 0.75, 1.0, 1.5, 2.0)
NORMALIZED_LUFS = -16.0
SENTENCES = (
    "今天天气真好，适合出去散步。",
    "我们明天上午九点在公司门口集合，请大家准时到达。",
    "这家餐厅的菜很好吃，价格也不贵。",
    "他昨天晚上加班到很晚，今天有点累。",
    "请把桌子上的文件交给王经理。",
    "火车马上就要开了，你快一点！",
    "我真的没有想到，事情会变成这样。",
    "外面下着大雨，记得带伞。",
    "这个问题我们下周再讨论吧。",
    "你看，天上有一道彩虹。",
    "妈妈做的饭总是最香的。",
    "图书馆周末也开放，可以去那里看书。",
    "他说的话，我一个字也不相信。",
    "小猫在窗台上晒太阳，看起来很舒服。",
    "我们终于完成了这个项目。",
    "明年夏天，我想去海边旅行。",
    "请不要在这里吸烟，谢谢合作。",
    "孩子们在公园里放风筝，笑得很开心。",
    "这次考试比上次难多了。",
    "门口好像有人在敲门，你去看看。",
    "他把钥匙忘在办公室里了。",
    "春天来了，路边的花都开了。",
)


def loudness_lufs(samples: np.ndarray) -> float:
    import pyloudnorm  # optional: the bench's own dependency

    return float(pyloudnorm.Meter(RATE).integrated_loudness(samples.astype(np.float64)))


def normalized(samples: np.ndarray) -> np.ndarray:
    """Scaled to NORMALIZED_LUFS, peaks pulled back under PEAK_LIMIT."""
    out = samples * np.float32(10 ** ((NORMALIZED_LUFS - loudness_lufs(samples)) / 20))
    peak = float(np.max(np.abs(out)))
    return out * np.float32(PEAK_LIMIT / peak) if peak > PEAK_LIMIT else out


# -- features ----------------------------------------------------------------------------------------------------
HOP = 240  # 10 ms
# Speaking rate (syllables per second) rather than duration: a sentence's length says nothing about its emotion.
FEATURES = ("syllables_per_s", "rms_db", "f0_median_st", "f0_range_st", "energy_slope_db",
            "pause_s", "final_rise_st")


def prosody(samples: np.ndarray, text: str) -> dict[str, float]:
    import librosa  # the bench's own dependency (test extra)

    frame_db = 20 * np.log10(librosa.feature.rms(y=samples, frame_length=960, hop_length=HOP)[0] + 1e-6)
    speech = frame_db > frame_db.max() - 35
    idx = np.flatnonzero(speech)
    first, last = idx[0], idx[-1]
    inner = ~speech[first:last + 1]
    gaps = [len(run) for run in "".join("1" if s else "0" for s in inner).split("0") if len(run) >= 8]  # >= 80 ms
    f0 = librosa.yin(samples, fmin=70, fmax=600, sr=RATE, frame_length=1920, hop_length=HOP)
    n = min(f0.size, speech.size)
    voiced_db = frame_db[:n][speech[:n]]
    voiced = f0[:n][speech[:n] & (frame_db[:n] > frame_db.max() - 25)]
    st = 12 * np.log2(voiced / 100.0)
    # The tracker's octave errors and one-frame spikes would otherwise decide the range and the ending.
    st = median_filter(st[np.abs(st - np.median(st)) < 12], size=5, mode="nearest")
    tail = st[-max(5, st.size // 6):]
    t = np.linspace(0, 1, voiced_db.size)
    duration = (last - first + 1) * HOP / RATE
    return {
        "duration_s": duration,
        "syllables_per_s": len(re.findall(r"[\u4e00-\u9fff]", text)) / duration,
        "rms_db": float(10 * np.log10(np.mean(samples[first * HOP:(last + 1) * HOP] ** 2) + 1e-12)),
        "f0_median_st": float(np.median(st)),
        "f0_range_st": float(np.percentile(st, 90) - np.percentile(st, 10)),
        "energy_slope_db": float(np.polyfit(t, voiced_db, 1)[0]),
        "pause_s": sum(gaps) * HOP / RATE,
        # The top of the closing stretch: a rising ending lifts it, a falling one (the usual) does not.
        "final_rise_st": float(np.percentile(tail, 90) - np.median(st)),
    }


def loso_accuracy(rows: list[dict], features: tuple[str, ...]) -> tuple[float, dict[str, float]]:
    """Leave-one-sentence-out nearest centroid on z-scored features; overall and per-emotion accuracy."""
    sentences = sorted({r["sentence"] for r in rows})
    hits: dict[str, list[bool]] = {e: [] for e in EMOTIONS}
    for held in sentences:
        train = [r for r in rows if r["sentence"] != held]
        x = np.array([[r[f] for f in features] for r in train])
        mu, sd = x.mean(0), x.std(0) + 1e-9
        cent = {e: ((np.array([[r[f] for f in features] for r in train if r["emotion"] == e]) - mu) / sd).mean(0)
                for e in EMOTIONS}
        for r in rows:
            if r["sentence"] == held:
                z = (np.array([r[f] for f in features]) - mu) / sd
                guess = min(cent, key=lambda e: float(np.sum((z - cent[e]) ** 2)))
                hits[r["emotion"]].append(guess == r["emotion"])
    per = {e: float(np.mean(h)) for e, h in hits.items()}
    return float(np.mean([v for h in hits.values() for v in h])), per


# -- the bench -----------------------------------------------------------------------------------------------------
def measure(scorer, audio: np.ndarray, normalize: bool) -> dict[str, float]:
    row = {"mos": scorer.score(audio, RATE), "lufs": loudness_lufs(audio)}
    if normalize:
        row["mos_norm"] = scorer.score(normalized(audio), RATE)
    return row


def run(engine, scorer, sentences: tuple[str, ...], normalize: bool, speeds: bool,
        emotions: tuple[str, ...] = EMOTIONS) -> dict:
    emotion_rows, speed_rows = [], []
    for i, text in enumerate(sentences):
        for emotion in emotions:
            audio = engine.synthesize(text, SynthesisParams(emotion, 1.0))
            row = {"sentence": i, "emotion": emotion} | measure(scorer, audio, normalize)
            emotion_rows.append(row | prosody(audio, text))
        for speed in SPEEDS if speeds else ():
            if speed == 1.0:
                base = next(r for r in emotion_rows if r["sentence"] == i and r["emotion"] == "neutral")
                speed_rows.append({k: base[k] for k in ("sentence", "mos", "lufs", "mos_norm", "duration_s")
                                   if k in base} | {"speed": speed})
                continue
            audio = engine.synthesize(text, SynthesisParams("neutral", speed))
            speed_rows.append({"sentence": i, "speed": speed} | measure(scorer, audio, normalize)
                              | {"duration_s": prosody(audio, text)["duration_s"]})
        print(f"  sentence {i + 1}/{len(sentences)}", file=sys.stderr, flush=True)
    return {"emotions": emotion_rows, "speeds": speed_rows}


def _mean(rows: list[dict], key: str) -> str:
    return f"{np.mean([r[key] for r in rows]):.2f}" if rows and key in rows[0] else "-"


def report(title: str, result: dict) -> str:
    rows, speeds = result["emotions"], result["speeds"]
    out = [f"## {title}", "", "| emotion | MOS | MOS @-16 LUFS | LUFS | " + " | ".join(FEATURES) + " |",
           "| --- | --- | --- | --- | " + " | ".join("---" for _ in FEATURES) + " |"]
    for e in EMOTIONS:
        sel = [r for r in rows if r["emotion"] == e]
        if not sel:
            continue
        out.append(f"| {e} | {_mean(sel, 'mos')} | {_mean(sel, 'mos_norm')} | {_mean(sel, 'lufs')} | "
                   + " | ".join(_mean(sel, f) for f in FEATURES) + " |")
    if speeds:
        out += ["", "| speed | MOS | min MOS | MOS @-16 LUFS | LUFS | duration s |",
                "| --- | --- | --- | --- | --- | --- |"]
    for speed in SPEEDS if speeds else ():
        sel = [r for r in speeds if r["speed"] == speed]
        out.append(f"| {speed} | {_mean(sel, 'mos')} | {min(r['mos'] for r in sel):.2f} | {_mean(sel, 'mos_norm')} | "
                   f"{np.mean([r['lufs'] for r in sel]):.1f} | {_mean(sel, 'duration_s')} |")
    out.append("")
    if len({r["emotion"] for r in rows}) < len(EMOTIONS):
        return "\n".join(out) + "\n"  # --speeds-only: no classification
    for label, feats in (("all prosody features", FEATURES),
                         ("without loudness (rms_db)", tuple(f for f in FEATURES if f != "rms_db")),
                         ("speaking rate, rms, median F0, F0 range only", FEATURES[:4])):
        acc, per = loso_accuracy(rows, feats)
        out.append(f"- classification, {label}: **{acc:.0%}** ("
                   + ", ".join(f"{e} {v:.0%}" for e, v in per.items()) + ")")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every third sentence (8), for tuning iterations")
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--presets", type=Path, default=None, help="JSON emotion -> preset (overrides the engine's)")
    parser.add_argument("--no-speeds", action="store_true", help="emotions only")
    parser.add_argument("--speeds-only", action="store_true",
                        help="neutral at every speed only (no emotion table or classification)")
    parser.add_argument("--normalized", action="store_true", help=f"also score at {NORMALIZED_LUFS} LUFS")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    args = parser.parse_args(argv)

    from inference.quality import MosScorer  # torch: the quality extra

    scorer = MosScorer(threads=args.threads).load()
    options = {"emotions": json.loads(args.presets.read_text())} if args.presets else {}
    engine = create_engine("fastspeech2-baker", threads=args.threads, options=options)
    engine.load()
    sentences = SENTENCES[::3] if args.quick else SENTENCES[:args.sentences]
    start = time.monotonic()
    result = run(engine, scorer, sentences, args.normalized, not args.no_speeds,
                 ("neutral",) if args.speeds_only else EMOTIONS)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"# {len(sentences)} sentences, {time.monotonic() - start:.0f} s on {machine} ({args.threads} thread(s));"
          f" model duration range {MODEL_DURATION_RANGE}")
    print(report("bench/quality.py " + " ".join(argv if argv is not None else sys.argv[1:]), result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
