"""``tts-ops mos`` end to end: real processes, the real model, real synthesised files on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf

# Runs tts_ops.cli.main with the mos sub-command added when build_parser does not list it yet, so the test
# exercises main()'s real error handling either way (a no-op once the command is wired in).
DRIVER = """
import argparse, sys
import tts_ops.cli as cli
from tts_ops.cli import quality
build = cli.build_parser
def with_mos():
    parser = build()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "mos" not in sub.choices:
        quality.register(sub)
    return parser
cli.build_parser = with_mos
sys.exit(cli.main(sys.argv[1:]))
"""


def mos_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRIVER, "mos", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_mos_prints_a_score_per_file_and_names_the_bad_one(tmp_path: Path, synthesized, damaged):
    samples, rate = synthesized
    good, bad_audio, broken = tmp_path / "good.flac", tmp_path / "damaged.wav", tmp_path / "broken.wav"
    sf.write(good, samples, rate)
    sf.write(bad_audio, damaged, rate)
    broken.write_bytes(b"not audio")

    ok = mos_cli(str(good), str(bad_audio))
    assert ok.returncode == 0, ok.stderr
    scores = {line.split()[1]: float(line.split()[0]) for line in ok.stdout.splitlines()}
    assert scores[str(good)] >= scores[str(bad_audio)] + 1.0

    mixed = mos_cli(str(good), str(broken), "--json")
    assert mixed.returncode == 1
    expected = f"tts-ops mos: {broken}: cannot read audio (Error opening '{broken}': Format not recognised.)"
    assert mixed.stderr.strip().splitlines() == [expected]
    files = json.loads(mixed.stdout)["files"]
    assert files[0]["file"] == str(good) and abs(files[0]["mos"] - scores[str(good)]) < 0.01
    assert files[1]["file"] == str(broken) and "cannot read audio" in files[1]["error"]


def test_mos_on_a_missing_file_is_one_line_and_no_traceback(tmp_path: Path):
    run = mos_cli(str(tmp_path / "nope.wav"))
    assert run.returncode == 1
    assert run.stderr.strip() == f"tts-ops mos: {tmp_path / 'nope.wav'}: no such file"
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_mos_without_torch_fails_with_the_install_line(tmp_path: Path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch blocked for this test')\n")
    run = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(blocker)!r}); " + DRIVER,
                          "mos", str(tmp_path / "x.wav")], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 1
    assert run.stderr.startswith("tts-ops mos: torch is not installed (torch blocked for this test); install a CPU")
    assert "tts-ops[quality]" in run.stderr
    assert "Traceback" not in run.stderr
