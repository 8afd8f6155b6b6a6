"""``tts-ops --version`` and ``tts-ops status``: the tables an operator reads (workers with the cause of a FAILED
one, cache, maintenance jobs, logs), ``--json`` for the raw document, against a real daemon whose model is broken."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata

import pytest

from tts_ops.cli import main
from tts_ops.cli.admin import format_status
from tts_ops.supervisor.handle import error_line
from tts_vocab.engines import ENGINE_IDS


def test_version_names_the_installed_package_and_the_engines(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"tts-ops {metadata.version('tts-ops')} ")
    assert all(engine in out for engine in ENGINE_IDS)


def test_error_line_drops_the_logger_name_and_is_bounded():
    assert error_line("tts_ops.worker: boot failed: checksum mismatch") == "boot failed: checksum mismatch"
    assert error_line("boot failed: x") == "boot failed: x"  # "boot failed" has a space: not a logger name
    assert len(error_line("x" * 5000)) == 500


def worker(wid: str, state: str, last_error: str | None, reason: str | None = None) -> dict:
    return {"id": wid, "pid": None, "state": state, "uptime_s": None, "restarts": 2, "rss_mb": None,
            "cpu_percent": None, "in_flight": 0, "served": 0, "last_probe_ms": None, "last_exit_reason": reason,
            "last_error": last_error}


def document(**sections) -> dict:
    return {"pid": 1, "uptime_s": 5, "engine": "fastspeech2-baker", "queue_depth": 0, "queue_limit": 64,
            "in_flight": 0, "totals": {"requests": 0},
            "workers": {"ready": 1, "target": 2, "items": [
                worker("w1", "failed", "boot failed: checksum mismatch in mb_melgan.tflite", "boot failure (exit 3)"),
                worker("w2", "ready", "an old error")]}, **sections}


def test_failed_worker_shows_its_cause_a_ready_one_does_not():
    text = format_status(document())
    assert "w1 cause: boot failed: checksum mismatch in mb_melgan.tflite" in text
    assert "an old error" not in text and "w2 cause" not in text


def test_the_zygote_has_a_line_with_its_last_exit():
    doc = document()
    doc["workers"]["zygote"] = {"enabled": True, "state": "down", "pid": None, "restarts": 1, "forks": 4,
                                "preload_s": 2.1, "last_exit_reason": "killed by SIGKILL"}
    assert "zygote: down, pid -, forks 4, restarts 1, last exit: killed by SIGKILL" in format_status(doc)
    assert "zygote" not in format_status(document())  # a daemon that sends none (older version)


def test_cache_maintenance_and_logs_are_tables_not_json():
    text = format_status(document(
        cache={"backend": "memory", "up": True, "hit_ratio": 0.25, "hits": 1, "misses": 3, "items": 1,
               "bytes": 2**20, "max_bytes": 2**28, "evictions": 0, "errors": 0, "outages": 0, "breaker": None},
        maintenance=[{"id": "cleanup", "trigger": "interval[1:00:00]", "last_run": None, "last_duration_s": None,
                      "runs": 0, "failures": 1, "next_run": "2026-12-04T20:55:54.7+00:00", "last_error": "disk"}],
        logs={"rotations": 0, "last_rotation": None, "pruned_files": 0, "pruned_bytes": 0,
              "size": {"error": 2048}, "bytes_written": {"error": 2048}, "dropped": {"error": 0},
              "open": {"error": True}}))
    assert "{" not in text
    lines = text.splitlines()
    assert any(line.split()[:3] == ["memory", "up", "25.0%"] for line in lines)
    assert any(line.split()[:2] == ["cleanup", "interval[1:00:00]"] and "2026-12-04 20:55:54" in line
               for line in lines)
    assert any(line.split() == ["error", "2.0", "2.0", "0", "yes"] for line in lines)
    assert "CACHE disabled" in format_status(document(cache={}))


class BrokenStore:
    """A copy of the model store with a corrupted vocoder: every worker boot fails its checksum (exit 3)."""

    def __init__(self, source, root) -> None:
        shutil.copytree(source, root, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
        vocoder = next(root.rglob("mb_melgan.tflite"))
        data = bytearray(vocoder.read_bytes())
        data[1000:1010] = b"corrupted!"
        vocoder.write_bytes(bytes(data))
        self.root = root


def run_cli(daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_ops.cli", *args, "--config", str(daemon.config_path)],
                          capture_output=True, text=True, timeout=120, env=daemon.env)


@pytest.mark.slow
def test_status_of_a_failed_worker_names_the_checksum_mismatch(start_daemon, model_store_dir, tmp_path):
    store = BrokenStore(model_store_dir, tmp_path / "store")
    daemon = start_daemon({"workers": {"boot_failure_limit": 1, "failed_cooldown_s": 600}}, workers=1,
                          store_dir=store.root, wait=False)
    daemon.wait_until(lambda: daemon.status()["workers"]["items"][0]["state"] == "failed", 60, what="FAILED")
    [row] = daemon.status()["workers"]["items"]
    assert "checksum" in (row["last_error"] or ""), row
    result = run_cli(daemon, "status")
    assert result.returncode == 0, result.stderr
    assert f"w1 cause: {row['last_error']}" in result.stdout
    assert "CACHE" in result.stdout and "JOB" in result.stdout and "LOG" in result.stdout
    raw = run_cli(daemon, "status", "--json")
    assert json.loads(raw.stdout)["workers"]["items"][0]["last_error"] == row["last_error"]


def test_quality_scorer_shows_its_state_cause_and_recent_means_only_when_sampling():
    quality = {"enabled": True, "sample_rate": 0.05, "min_mos": 2.5, "queue": 1, "queue_size": 32, "scored": 7,
               "low_quality": 1, "dropped": {"queue_full": 2, "scorer_failed": 1},
               "recent_mean": {"neutral": 3.512, "sad": 3.3},
               "scorer": {"state": "failed", "pid": None, "restarts": 0,
                          "reason": "boot failure (exit 3): boot failed: torch is not installed"}}
    lines = format_status(document(quality=quality)).splitlines()
    assert any(line.split() == ["failed", "-", "0", "0.05", "1/32", "7", "1", "3"] for line in lines)
    assert "  scorer cause: boot failure (exit 3): boot failed: torch is not installed" in lines
    assert "  recent MOS: neutral 3.51, sad 3.30" in lines
    off = format_status(document(quality={"enabled": False, "sample_rate": 0.0, "scorer": {"state": "off"}}))
    assert "SCORER" not in off  # control: no section while sampling is off
