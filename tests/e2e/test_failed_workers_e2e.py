"""End-to-end FAILED workers on a real ``tts-ops serve``: a slot whose model cannot load goes through the crash loop
to FAILED, is retried after ``failed_cooldown_s`` (and serves once the model is repaired), and a daemon whose every
worker is FAILED keeps answering - 503 to the public API, its status to the admin API - and still stops cleanly."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from tests.conftest import http

pytestmark = pytest.mark.slow


class BrokenStore:
    """A private copy of the model store whose vocoder can be corrupted (the worker then exits with code 3,
    a boot failure) and restored."""

    def __init__(self, source: Path, root: Path) -> None:
        shutil.copytree(source, root, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
        self.root = root
        self.vocoder = next(root.rglob("mb_melgan.tflite"))
        self.original = self.vocoder.read_bytes()

    def corrupt(self) -> None:
        data = bytearray(self.original)
        data[1000:1010] = b"corrupted!"
        self.vocoder.write_bytes(bytes(data))

    def repair(self) -> None:
        self.vocoder.write_bytes(self.original)


@pytest.fixture
def broken_store(model_store_dir, tmp_path) -> BrokenStore:
    store = BrokenStore(model_store_dir, tmp_path / "store")
    store.corrupt()
    return store


def worker_rows(daemon) -> list[dict]:
    return daemon.status()["workers"]["items"]


def by_state(daemon) -> dict[str, int]:
    _, _, body = http("GET", daemon.base_url + "/ready", timeout=5)
    return json.loads(body)["workers"]["by_state"]


def test_crash_loop_reaches_failed_is_retried_after_the_cool_down_and_recovers(start_daemon, broken_store):
    # The model is broken from the first spawn: initial boot + restart #1 fail -> FAILED (limit 2).
    daemon = start_daemon({"workers": {"boot_failure_limit": 2, "failed_cooldown_s": 6}}, workers=1,
                          store_dir=broken_store.root, wait=False)
    daemon.wait_until(lambda: "boot failed 2 times in a row; retry in 6s" in daemon.log(), 60,
                      what="FAILED after two boot failures")
    [row] = worker_rows(daemon)
    assert row["state"] == "failed" and row["restarts"] == 1, row
    assert "boot failure (exit 3)" in row["last_exit_reason"]
    assert by_state(daemon)["failed"] == 1
    worker_id = row["id"]

    # After the cool-down the same slot is tried again (restart #2); still broken, so straight back to FAILED -
    # one attempt per cool-down, not a new series of backoff restarts.
    daemon.wait_until(lambda: "boot failed 3 times in a row; retry in 6s" in daemon.log(), 30,
                      what="a boot attempt after the cool-down")
    [row] = worker_rows(daemon)
    assert (row["id"], row["state"], row["restarts"]) == (worker_id, "failed", 2), row
    assert f"[worker={worker_id} pid=-] failed -> starting: restart #2" in daemon.log()
    assert daemon.status()["restarts_by_reason"] == {"boot failure": 3}
    code, _, _ = http("POST", daemon.base_url + "/tts", {"text": "模型还坏着。"}, timeout=20)
    assert code == 503

    # Repaired while FAILED (no process is running): the next cool-down retry boots and serves.
    broken_store.repair()
    daemon.wait_ready(1, timeout=30)
    [row] = worker_rows(daemon)
    assert (row["id"], row["state"]) == (worker_id, "ready") and row["restarts"] >= 3, row
    # Every restart followed a boot failure; the successful boot is not counted as one.
    assert daemon.status()["restarts_by_reason"] == {"boot failure": row["restarts"]}
    assert f"[worker={worker_id} pid=-] failed -> starting: restart #{row['restarts']}" in daemon.log()
    code, headers, _ = http("POST", daemon.base_url + "/tts", {"text": "模型修好了。"})
    assert code == 200 and headers["X-Worker"] == worker_id


def test_daemon_with_every_worker_failed_answers_503_and_stops_cleanly(start_daemon, broken_store):
    daemon = start_daemon({"workers": {"boot_failure_limit": 1, "failed_cooldown_s": 300},
                           "server": {"retry_after_s": 7}}, workers=2, store_dir=broken_store.root, wait=False)
    daemon.wait_until(lambda: [r["state"] for r in worker_rows(daemon)] == ["failed", "failed"], 60,
                      what="both workers FAILED")

    code, headers, body = http("GET", daemon.base_url + "/health")
    assert (code, body) == (503, b'{"status":"unhealthy"}')
    assert headers["Content-Type"].startswith("application/json")
    code, _, body = http("GET", daemon.base_url + "/ready")
    ready = json.loads(body)
    assert code == 503 and ready["ready"] is False and ready["accepting"] is True
    assert ready["workers"]["by_state"]["failed"] == 2 and ready["workers"]["ready"] == 0
    code, headers, body = http("POST", daemon.base_url + "/tts", {"text": "没有工作进程可以合成。"}, timeout=20)
    assert code == 503, body
    assert headers["Content-Type"].startswith("application/json")
    assert "no worker is available" in json.loads(body)["error"]
    assert headers["Retry-After"] == "7"

    # The daemon itself is fine: it answers its admin API and reports the slots as FAILED, waiting out the cool-down.
    status = daemon.status()
    assert status["state"] == "running" and status["accepting"] is True
    assert status["workers"]["target"] == 2 and status["workers"]["ready"] == 0
    assert all("boot failure (exit 3)" in r["last_exit_reason"] for r in status["workers"]["items"])
    assert daemon.proc.poll() is None

    assert daemon.stop(signal.SIGTERM, timeout=30) == 0, daemon.log()[-3000:]
    assert "daemon stopping -> stopped" in daemon.log() and "Traceback" not in daemon.log()
