"""``tts-ops synth`` end to end: real ``python -m tts_ops.cli`` processes, the real bundled model, files on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

SENTENCE = "今天天气真好，适合出去散步。"
RATE = 24000
EXIT_USAGE = 2
LITERT_BANNER = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def cli_env(model_store_dir: Path) -> dict[str, str]:
    # A clean environment: no TTS_OPS_* or systemd directory variables from the caller's shell.
    drop = ("TTS_OPS_", "STATE_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY", "RUNTIME_DIRECTORY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["TTS_OPS_MODEL_DIR"] = str(model_store_dir)
    return env


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tts_ops.cli", "synth", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(args: list[str], proc: subprocess.Popen) -> Run:
    stdout, stderr = proc.communicate(timeout=120)
    return Run(args, proc.returncode, stdout, stderr)


def synth(args: list[str], cwd: Path, env: dict[str, str]) -> Run:
    return finish(args, start(args, cwd, env))


SUCCESSFUL = {
    "wav": [SENTENCE, "-o", "a.wav"],
    "fast": [SENTENCE, "-o", "fast.wav", "--speed", "2.0"],
    "normal": [SENTENCE, "-o", "normal.wav", "--speed", "1.0"],
    "mp3": [SENTENCE, "-o", "x.mp3"],
    "flac": [SENTENCE, "-o", "out.audio", "--format", "flac", "--emotion", "sad"],
    "ssml": ['<speak>今天天气真好<break time="800ms"/>适合出去散步。</speak>', "-o", "ssml.wav"],
}


@pytest.fixture(scope="module")
def outputs(model_store_dir, tmp_path_factory) -> tuple[Path, dict[str, Run]]:
    """The successful invocations, run concurrently once (each loads the model: ~1.3 s)."""
    workdir = tmp_path_factory.mktemp("synth")
    env = cli_env(model_store_dir)
    procs = {name: start(args, workdir, env) for name, args in SUCCESSFUL.items()}
    return workdir, {name: finish(SUCCESSFUL[name], proc) for name, proc in procs.items()}


def ok(outputs, name: str) -> Path:
    workdir, runs = outputs
    run = runs[name]
    assert run.returncode == 0, f"{run.args}: exit {run.returncode}\n{run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr
    path = workdir / run.args[run.args.index("-o") + 1]
    assert path.is_file()
    assert f"wrote {path.name}" in run.stdout
    return path


def interior_gaps(samples: np.ndarray, threshold: float = 0.005, frame_s: float = 0.01) -> list[float]:
    """Lengths (s) of low-energy runs of 10 ms frames that are inside the speech (not at its start or end)."""
    size = int(RATE * frame_s)
    count = samples.size // size
    rms = np.sqrt(np.mean(samples[: count * size].astype(np.float64).reshape(count, size) ** 2, axis=1))
    quiet = np.concatenate([[0], (rms < threshold).astype(np.int8), [0]])
    starts, ends = np.flatnonzero(np.diff(quiet) == 1), np.flatnonzero(np.diff(quiet) == -1)
    return [(end - start) * frame_s for start, end in zip(starts, ends, strict=True) if start > 0 and end < count]


def test_synth_writes_24khz_mono_speech_wav(outputs):
    path = ok(outputs, "wav")
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", RATE, 1)
    samples, rate = sf.read(path, dtype="float32")
    assert 2.0 <= samples.size / rate <= 5.0, samples.size / rate
    assert np.sqrt(np.mean(samples**2)) > 0.02  # speech level, not silence or hiss
    gaps = interior_gaps(samples)
    # The comma in the sentence gives a pause (~140 ms measured) between the two clauses.
    assert any(gap >= 0.08 for gap in gaps), gaps
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was renamed into place


def test_speed_two_is_at_least_30_percent_shorter(outputs):
    fast = sf.info(ok(outputs, "fast")).duration
    normal = sf.info(ok(outputs, "normal")).duration
    assert fast <= 0.7 * normal, (fast, normal)


def test_ssml_is_rendered_like_the_daemon_does(outputs):
    samples, _ = sf.read(ok(outputs, "ssml"), dtype="float32")
    # The break is exact silence of 800 ms; the tags are not read out (that would be seconds of speech).
    assert any(0.75 <= gap <= 0.95 for gap in interior_gaps(samples)), interior_gaps(samples)
    assert samples.size / RATE < 6.0


@pytest.mark.parametrize("name", ["normal", "fast", "flac"])
def test_answers_are_normalised_to_the_configured_loudness(outputs, name):
    samples, rate = sf.read(ok(outputs, name), dtype="float64")
    assert pyloudnorm.Meter(rate).integrated_loudness(samples) == pytest.approx(-16.0, abs=0.5)


def test_bad_ssml_exits_2_naming_the_element(model_store_dir, tmp_path):
    run = synth(["<speak>你好<audio src='x'/></speak>", "-o", "out.wav"], tmp_path, cli_env(model_store_dir))
    assert run.returncode == EXIT_USAGE, run.stderr
    assert run.stderr.startswith("tts-ops synth: ") and "audio" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_format_from_extension_mp3(outputs):
    path = ok(outputs, "mp3")
    info = sf.info(path)
    assert (info.format, info.samplerate, info.channels) == ("MP3", RATE, 1)
    samples, _ = sf.read(path, dtype="float32")
    assert 2.0 <= samples.size / RATE <= 5.0
    assert "(mp3, 24000 Hz" in outputs[1]["mp3"].stdout


def test_format_flag_overrides_extension(outputs):
    path = ok(outputs, "flac")
    info = sf.info(path)
    assert (info.format, info.samplerate, info.channels) == ("FLAC", RATE, 1)
    # sad is slower (its duration ratio, 1.2 by default) than the neutral reading of the same sentence.
    assert info.duration > sf.info(ok(outputs, "wav")).duration


@pytest.mark.parametrize(
    "args, named",
    [
        (["--speed", "9"], "speed must be between 0.5 and 2.0, got 9.0"),
        (["--speed", "nan"], "speed must be between"),
        (["--emotion", "bored"], "unknown emotion 'bored'"),
        (["--format", "aac"], "unsupported audio format 'aac'"),
        (["-o", "x.aac"], "cannot infer audio format from 'x.aac'"),
        (["--voice", "xiaoming"], "unknown voice 'xiaoming'"),
        (["--sample-rate", "1000"], "--sample-rate must be between 8000 and 48000"),
        (["--format", "opus"], "--format opus contradicts the output file's extension (.wav)"),
    ],
)
def test_bad_values_exit_2_with_one_line_and_no_file(model_store_dir, tmp_path, args, named):
    full = [SENTENCE, "-o", "out.wav", *args] if "-o" not in args else [SENTENCE, *args]
    run = synth(full, tmp_path, cli_env(model_store_dir))
    assert run.returncode == EXIT_USAGE, run.stderr
    # LiteRT's C++ runtime prints this one line on its own when a synthesis ran before the failure.
    lines = [line for line in run.stderr.splitlines() if line != LITERT_BANNER]
    assert len(lines) == 1 and lines[0].startswith("tts-ops synth: ") and named in lines[0], run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no output file, no temporary file


def test_unparsable_number_is_an_argparse_usage_error(model_store_dir, tmp_path):
    run = synth([SENTENCE, "-o", "out.wav", "--speed", "fast"], tmp_path, cli_env(model_store_dir))
    assert run.returncode == EXIT_USAGE
    assert "argument --speed: invalid float value: 'fast'" in run.stderr.splitlines()[-1]
    assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_nothing_speakable_exits_2(model_store_dir, tmp_path):
    run = synth(["😀😀！", "-o", "out.wav"], tmp_path, cli_env(model_store_dir))
    assert run.returncode == EXIT_USAGE, run.stderr
    lines = [line for line in run.stderr.splitlines() if line != LITERT_BANNER]
    assert len(lines) == 1 and "nothing speakable" in lines[0], run.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_config_file_is_one_line_naming_the_key(model_store_dir, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("server: {prot: 1}\n")
    run = synth([SENTENCE, "-o", "out.wav", "--config", str(config)], tmp_path, cli_env(model_store_dir))
    assert run.returncode == EXIT_USAGE
    assert "server.prot: unknown key (did you mean 'port'?)" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out.wav").exists()


def test_models_options_work_after_the_action_too(model_store_dir, tmp_path):
    run = subprocess.run([sys.executable, "-m", "tts_ops.cli", "models", "list", "--store", str(model_store_dir)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0 and f"store: {model_store_dir}" in run.stdout, run.stderr
    assert "fastspeech2-baker (default)" in run.stdout and "pulled" in run.stdout


def test_no_native_info_line_unless_verbose(outputs, model_store_dir, tmp_path):
    _, runs = outputs
    for run in runs.values():
        assert LITERT_BANNER not in run.stderr, run.stderr
    # Positive control: the line exists and --verbose lets it through.
    verbose = subprocess.run([sys.executable, "-m", "tts_ops.cli", "--verbose", "synth", SENTENCE, "-o", "v.wav"],
                             cwd=tmp_path, env=cli_env(model_store_dir), capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 0, verbose.stderr
    assert LITERT_BANNER in verbose.stderr


def test_missing_output_directory_is_refused_and_not_created(model_store_dir, tmp_path):
    run = synth([SENTENCE, "-o", "no/such/dir/out.wav"], tmp_path, cli_env(model_store_dir))
    assert run.returncode == EXIT_USAGE, run.stderr
    assert run.stderr.strip() == ("tts-ops synth: output directory no/such/dir does not exist; create it first or "
                                  "choose another -o path"), run.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    run = synth([SENTENCE, "-o", "file/out.wav"], tmp_path, cli_env(model_store_dir))
    assert run.returncode == EXIT_USAGE and "output directory file is not a directory" in run.stderr


def stdout_synth(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_ops.cli", "synth", SENTENCE, "-o", "-", *args], cwd=cwd,
                          env=env, capture_output=True, timeout=120)


@pytest.mark.parametrize("args, fmt", [([], "WAV"), (["--format", "flac"], "FLAC")])
def test_dash_writes_the_audio_to_stdout(model_store_dir, tmp_path, args, fmt):
    import io

    run = stdout_synth(args, tmp_path, cli_env(model_store_dir))
    assert run.returncode == 0, run.stderr
    info = sf.info(io.BytesIO(run.stdout))
    assert (info.format, info.samplerate, info.channels) == (fmt, RATE, 1) and info.duration > 2.0
    assert b"wrote standard output" in run.stderr
    assert list(tmp_path.iterdir()) == []  # no file named "-", no temporary file
