"""Quality bench for the bundled voice: predicted MOS (Distill-MOS) per emotion and per speed, loudness, prosody
features and a leave-one-sentence-out nearest-centroid emotion classification.

    python bench/quality.py [--quick] [--sentences N] [--presets FILE.json] [--no-speeds | --speeds-only]
                            [--no-mos] [--loudness-lufs LUFS|none] [--json OUT]

Measures the engine as it is (its presets, or those of ``--presets``, a JSON object emotion -> preset keys, for
tuning runs). ``--quick`` takes every third sentence (8) for iteration; the README's table is the full run.
Everything (MOS, prosody features, classification) is measured on the audio as the service delivers it: normalised
by inference.loudness to ``--loudness-lufs`` (default -16, the service's ``audio.loudness_lufs``; ``none`` = the
engine's raw level). The LUFS column is the raw engine output's (ITU-R BS.1770 integrated, pyloudnorm), before that.
The MOS model is loaded once; everything runs on ``--threads`` CPU threads. A ``--presets`` entry is laid over the
engine's default for that emotion, so a file of older presets must list every key: the README's "before" table of
the second re-tuning is ``--no-speeds --presets bench/presets_f79f955.json`` (the presets of commit f79f955, the
keys added since at 0). The first re-tuning's "before" was an earlier version of this file run against commit
b76841d.
Needs the quality extra (CPU torch, distillmos) and librosa (the test extra).
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
import pyloudnorm
from scipy.ndimage import median_filter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.engines import EMOTIONS, create_engine
from inference.engines.base import SynthesisParams
from inference.engines.fastspeech2 import SAMPLE_RATE
from inference.loudness import normalize_loudness

try:
    from inference.prosody import MODEL_DURATION_RANGE
except ImportError:  # the engine before the re-tuning (run this file against an old checkout to measure it)
    MODEL_DURATION_RANGE = None

RATE = SAMPLE_RATE
SPEEDS = (0.5, 0.75, 1.0, 1.5, 2.0)
# The service's default audio.loudness_lufs: what listeners get.
DELIVERED_LUFS = -16.0
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
    return float(pyloudnorm.Meter(RATE).integrated_loudness(samples.astype(np.float64)))


def delivered(samples: np.ndarray, target_lufs: float | None) -> np.ndarray:
    """The engine's samples as the worker sends them (inference.loudness, the same code), or raw for None."""
    return samples if target_lufs is None else normalize_loudness(samples, RATE, target_lufs)

# -- features ----------------------------------------------------------------------------------------------------
HOP = 240  # 10 ms
# Measured on the delivered (loudness-normalised) audio. Articulation rate (syllables per second of speech, pauses
# excluded) rather than duration: a sentence's length says nothing about its emotion, and the pauses are their own
# feature (a speaking rate over the whole span counts them twice, and only in sentences with a comma). rms_db is what
# is left of level differences after normalisation (LUFS weighs frequencies, RMS does not); "lufs" (the raw engine
# level) is a feature only in the "normalisation off" line of the report.
FEATURES = ("articulation_rate", "rms_db", "f0_median_st", "f0_range_st", "f0_slope_st", "energy_slope_db",
            "pause_s", "final_rise_st", "alpha_ratio_db")
LEVEL_FEATURES = ("rms_db", "lufs")


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
    tail = max(5, st.size // 6)
    # eGeMAPS' alpha ratio over the speech frames: energy 1-5 kHz over 50 Hz-1 kHz (a tense voice is brighter).
    power = np.abs(librosa.stft(samples, n_fft=1024, hop_length=HOP))[:, :speech.size][:, speech] ** 2
    hz = librosa.fft_frequencies(sr=RATE, n_fft=1024)
    alpha = power[(hz >= 1000) & (hz < 5000)].sum() / power[(hz >= 50) & (hz < 1000)].sum()
    t = np.linspace(0, 1, voiced_db.size)
    duration = (last - first + 1) * HOP / RATE
    return {
        "duration_s": duration,
        "articulation_rate": len(re.findall(r"[\u4e00-\u9fff]", text)) / (duration - sum(gaps) * HOP / RATE),
        "rms_db": float(10 * np.log10(np.mean(samples[first * HOP:(last + 1) * HOP] ** 2) + 1e-12)),
        "f0_median_st": float(np.median(st)),
        "f0_range_st": float(np.percentile(st, 90) - np.percentile(st, 10)),
        # Declination: the median F0 of the second half of the utterance (closing stretch left out: that is the
        # final rise's) over that of the first half; medians, so single tones and tracker spikes do not decide it.
        "f0_slope_st": float(np.median(st[st.size // 2:-tail]) - np.median(st[:st.size // 2])),
        "energy_slope_db": float(np.polyfit(t, voiced_db, 1)[0]),
        "pause_s": sum(gaps) * HOP / RATE,
        # The top of the closing stretch: a rising ending lifts it, a falling one (the usual) does not.
        "final_rise_st": float(np.percentile(st[-tail:], 90) - np.median(st)),
        "alpha_ratio_db": float(10 * np.log10(alpha)),
    }


def loso(rows: list[dict], features: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Leave-one-sentence-out nearest centroid on z-scored features: the centroids and the z-scoring come from the
    other sentences only. Returns the confusion counts, true emotion -> guessed emotion -> count."""
    sentences = sorted({r["sentence"] for r in rows})
    confusion = {e: dict.fromkeys(EMOTIONS, 0) for e in EMOTIONS}
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
                confusion[r["emotion"]][guess] += 1
    return confusion


def accuracy(confusion: dict[str, dict[str, int]]) -> tuple[float, dict[str, float]]:
    per = {e: row[e] / max(1, sum(row.values())) for e, row in confusion.items()}
    total = sum(sum(row.values()) for row in confusion.values())
    return sum(row[e] for e, row in confusion.items()) / max(1, total), per


# -- the bench -----------------------------------------------------------------------------------------------------
def measure(scorer, raw: np.ndarray, target_lufs: float | None) -> tuple[dict[str, float], np.ndarray]:
    audio = delivered(raw, target_lufs)
    row = {"lufs": loudness_lufs(raw)} | ({"mos": scorer.score(audio, RATE)} if scorer else {})
    return row, audio


def run(engine, scorer, sentences: tuple[str, ...], target_lufs: float | None, speeds: bool,
        emotions: tuple[str, ...] = EMOTIONS) -> dict:
    emotion_rows, speed_rows = [], []
    for i, text in enumerate(sentences):
        for emotion in emotions:
            row, audio = measure(scorer, engine.synthesize(text, SynthesisParams(emotion, 1.0)), target_lufs)
            emotion_rows.append({"sentence": i, "emotion": emotion} | row | prosody(audio, text))
        for speed in SPEEDS if speeds else ():
            if speed == 1.0:
                base = next(r for r in emotion_rows if r["sentence"] == i and r["emotion"] == "neutral")
                speed_rows.append({k: base[k] for k in ("sentence", "mos", "lufs", "duration_s") if k in base}
                                  | {"speed": speed})
                continue
            row, audio = measure(scorer, engine.synthesize(text, SynthesisParams("neutral", speed)), target_lufs)
            speed_rows.append({"sentence": i, "speed": speed} | row
                              | {"duration_s": prosody(audio, text)["duration_s"]})
        print(f"  sentence {i + 1}/{len(sentences)}", file=sys.stderr, flush=True)
    return {"emotions": emotion_rows, "speeds": speed_rows}


def _mean(rows: list[dict], key: str) -> str:
    return f"{np.mean([r[key] for r in rows]):.2f}" if rows and key in rows[0] else "-"


def classification(rows: list[dict]) -> list[str]:
    """Accuracy per feature set, and the confusion matrix of what a listener of the normalised output gets."""
    prosodic = tuple(f for f in FEATURES if f not in LEVEL_FEATURES)
    sets = (("as delivered, all features", FEATURES),
            ("as delivered, without loudness (rms_db)", prosodic),
            ("normalisation off (raw level as a feature, lufs)", (*prosodic, "lufs")),
            ("articulation rate, rms, median F0, F0 range only", FEATURES[:4]))
    out = []
    for label, feats in sets:
        acc, per = accuracy(loso(rows, feats))
        out.append(f"- classification, {label}: **{acc:.0%}** ("
                   + ", ".join(f"{e} {v:.0%}" for e, v in per.items()) + ")")
    confusion = loso(rows, prosodic)
    out += ["", "Confusion, as delivered without loudness (rows: preset, columns: nearest centroid):", "",
            "| | " + " | ".join(EMOTIONS) + " |", "| --- |" + " --- |" * len(EMOTIONS)]
    out += [f"| {e} | " + " | ".join(str(confusion[e][g]) for g in EMOTIONS) + " |" for e in EMOTIONS]
    return out


def report(title: str, result: dict) -> str:
    rows, speeds = result["emotions"], result["speeds"]
    out = [f"## {title}", "", "| emotion | MOS | raw LUFS | " + " | ".join(FEATURES) + " |",
           "| --- | --- | --- | " + " | ".join("---" for _ in FEATURES) + " |"]
    for e in EMOTIONS:
        sel = [r for r in rows if r["emotion"] == e]
        if not sel:  # --speeds-only
            continue
        out.append(f"| {e} | {_mean(sel, 'mos')} | {_mean(sel, 'lufs')} | "
                   + " | ".join(_mean(sel, f) for f in FEATURES) + " |")
    if speeds:
        out += ["", "| speed | MOS | min MOS | raw LUFS | duration s |", "| --- | --- | --- | --- | --- |"]
    for speed in SPEEDS if speeds else ():
        sel = [r for r in speeds if r["speed"] == speed]
        low = f"{min(r['mos'] for r in sel):.2f}" if "mos" in sel[0] else "-"
        out.append(f"| {speed} | {_mean(sel, 'mos')} | {low} | {np.mean([r['lufs'] for r in sel]):.1f} | "
                   f"{_mean(sel, 'duration_s')} |")
    if len({r["emotion"] for r in rows}) < len(EMOTIONS):  # --speeds-only: nothing to classify
        return "\n".join(out) + "\n"
    return "\n".join([*out, "", *classification(rows)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every third sentence (8), for tuning iterations")
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--presets", type=Path, default=None, help="JSON emotion -> preset (overrides the engine's)")
    parser.add_argument("--no-speeds", action="store_true", help="emotions only")
    parser.add_argument("--speeds-only", action="store_true",
                        help="neutral at every speed only (no emotion table or classification)")
    parser.add_argument("--no-mos", action="store_true", help="prosody and classification only (no torch)")
    parser.add_argument("--loudness-lufs", type=lambda v: None if v == "none" else float(v), default=DELIVERED_LUFS,
                        help=f"normalise like the service before measuring (default {DELIVERED_LUFS}; none = raw)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    args = parser.parse_args(argv)

    scorer = None
    if not args.no_mos:
        from inference.quality import MosScorer  # torch: the quality extra

        scorer = MosScorer(threads=args.threads).load()
    options = {"emotions": json.loads(args.presets.read_text())} if args.presets else {}
    engine = create_engine("fastspeech2-baker", threads=args.threads, options=options)
    engine.load()
    sentences = SENTENCES[::3] if args.quick else SENTENCES[:args.sentences]
    start = time.monotonic()
    result = run(engine, scorer, sentences, args.loudness_lufs, not args.no_speeds,
                 ("neutral",) if args.speeds_only else EMOTIONS)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"# {len(sentences)} sentences, {time.monotonic() - start:.0f} s on {machine} ({args.threads} thread(s));"
          f" model duration range {MODEL_DURATION_RANGE}; measured at {args.loudness_lufs} LUFS")
    print(report("bench/quality.py " + " ".join(argv if argv is not None else sys.argv[1:]), result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
