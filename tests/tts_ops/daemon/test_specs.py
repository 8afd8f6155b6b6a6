"""What the daemon's config turns into for its child processes (tts_ops.daemon.specs): the workers' loudness
target on their command line, and the scorer's bounded threads, niceness and single-boot-failure policy."""

from __future__ import annotations

from pathlib import Path

from tts_ops.config import Config
from tts_ops.daemon.specs import scorer_spec, worker_spec


def config(tmp_path: Path, **sections) -> Config:
    base: dict = {"paths": {"state_dir": tmp_path / "state", "runtime_dir": tmp_path / "run"},
                  "workers": {"count": 1}, **sections}
    return Config(**base)


def test_workers_get_the_loudness_target_unless_it_is_off(tmp_path):
    command = worker_spec(config(tmp_path, audio={"loudness_lufs": -18.5})).command("w1", tmp_path / "s")
    assert command[command.index("--loudness-lufs") + 1] == "-18.5"
    assert "--loudness-lufs" not in worker_spec(config(tmp_path, audio={"loudness_lufs": None})).command(
        "w1", tmp_path / "s")


def test_the_scorer_is_niced_thread_bounded_and_failed_at_its_first_boot_failure(tmp_path):
    spec = scorer_spec(config(tmp_path, quality={"sample_rate": 0.5, "threads": 2, "nice": 7}))
    command = spec.command()
    assert command[command.index("--threads") + 1] == "2" and command[command.index("--nice") + 1] == "7"
    assert command[command.index("-m") + 1] == "inference.quality.scorer_process"
    assert spec.process_env()["OMP_NUM_THREADS"] == "2" and spec.policy["boot_failure_limit"] == 1
