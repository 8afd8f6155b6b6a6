"""End-to-end: workers forked by the zygote on a real ``tts-ops serve``. A killed worker is replaced by a fork that
serves; the forked worker is the daemon's child (so its exit is accounted like a cold worker's); a killed zygote
means cold spawns until it is back; a daemon killed with SIGKILL takes its forked workers with it (PDEATHSIG);
``workers.zygote: false`` starts no zygote."""

from __future__ import annotations

import os
import shutil
import signal
import time

import psutil
import pytest

from tests.conftest import http

pytestmark = pytest.mark.slow


def rows(daemon) -> dict[str, dict]:
    return {row["id"]: row for row in daemon.status()["workers"]["items"]}


def zygote(daemon) -> dict:
    return daemon.status()["workers"]["zygote"]


def ready_with_new_pid(daemon, slot: str, old_pid: int) -> int | None:
    row = rows(daemon).get(slot)
    return row["pid"] if row and row["state"] == "ready" and row["pid"] not in (None, old_pid) else None


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_worker_is_replaced_by_a_fork_that_serves(start_daemon):
    daemon = start_daemon(workers=2)
    daemon.wait_until(lambda: zygote(daemon)["state"] == "ready", 60, what="the zygote ready")
    victim = rows(daemon)["w1"]["pid"]
    os.kill(victim, signal.SIGKILL)
    new_pid = daemon.wait_until(lambda: ready_with_new_pid(daemon, "w1", victim), 60, 0.05,
                                what="w1 replaced")
    assert f"[worker=w1 pid={new_pid}] forked by the zygote" in daemon.log()
    # Reparented through the subreaper: the daemon waits for it and reads its exit status like a cold worker's.
    assert psutil.Process(new_pid).ppid() == daemon.proc.pid
    assert "killed by SIGKILL" in daemon.status()["restarts_by_reason"]
    code, _, body = http("POST", daemon.base_url + "/tts", {"text": "分叉出来的进程也能合成。"}, timeout=60)
    assert code == 200 and body[:4] == b"RIFF", body[:200]
    # The fork's own exit is accounted too: a graceful stop is not a crash.
    os.kill(new_pid, signal.SIGKILL)
    daemon.wait_until(lambda: ready_with_new_pid(daemon, "w1", new_pid), 60, 0.05, what="w1 replaced again")
    assert daemon.status()["restarts_by_reason"]["killed by SIGKILL"] == 2


def test_a_killed_zygote_means_cold_spawns_until_it_is_restarted(start_daemon):
    daemon = start_daemon(workers=2)
    first = daemon.wait_until(lambda: zygote(daemon)["state"] == "ready" and zygote(daemon), 60,
                              what="the zygote ready")
    os.kill(first["pid"], signal.SIGKILL)
    daemon.wait_until(lambda: zygote(daemon)["state"] != "ready", 30, 0.02, what="the zygote seen down")
    victim = rows(daemon)["w1"]["pid"]
    os.kill(victim, signal.SIGKILL)
    cold = daemon.wait_until(lambda: ready_with_new_pid(daemon, "w1", victim), 90, what="w1 replaced")
    assert f"[worker=w1 pid={cold}] spawned" in daemon.log()  # not forked: the zygote was down

    back = daemon.wait_until(lambda: zygote(daemon)["state"] == "ready" and zygote(daemon), 90,
                             what="the zygote restarted")
    assert back["pid"] != first["pid"] and back["restarts"] >= 1
    victim = rows(daemon)["w2"]["pid"]
    os.kill(victim, signal.SIGKILL)
    forked = daemon.wait_until(lambda: ready_with_new_pid(daemon, "w2", victim), 60, 0.05, what="w2 replaced")
    assert f"[worker=w2 pid={forked}] forked by the zygote" in daemon.log()


def test_forked_workers_die_with_a_daemon_killed_with_sigkill(start_daemon):
    daemon = start_daemon(workers=2)
    daemon.wait_until(lambda: zygote(daemon)["state"] == "ready", 60, what="the zygote ready")
    victim = rows(daemon)["w1"]["pid"]
    os.kill(victim, signal.SIGKILL)  # its successor is surely a fork
    daemon.wait_until(lambda: ready_with_new_pid(daemon, "w1", victim), 60, 0.05, what="w1 replaced")
    pids = [row["pid"] for row in rows(daemon).values()] + [zygote(daemon)["pid"]]
    assert all(pid and not gone(pid) for pid in pids)
    daemon.proc.kill()
    daemon.proc.wait(10)
    wait_gone(pids)  # not daemon.wait_until: it fails as soon as the daemon has exited


def wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(gone(pid) for pid in pids):
            return
        time.sleep(0.1)
    raise AssertionError(f"still running after the daemon's SIGKILL: {[p for p in pids if not gone(p)]}")


def test_without_the_zygote_workers_are_cold_spawned(start_daemon):
    daemon = start_daemon({"workers": {"zygote": False}}, workers=1)
    state = zygote(daemon)
    assert state["state"] == "off" and state["pid"] is None
    pid = rows(daemon)["w1"]["pid"]
    assert f"[worker=w1 pid={pid}] spawned" in daemon.log()
    assert "forked by the zygote" not in daemon.log()


def test_forks_run_the_files_the_zygote_verified(start_daemon, model_store_dir, tmp_path):
    """A model file damaged on disk after the zygote preloaded does not reach its forks: they run what it verified
    (a cold spawn reads the disk and fails to boot: test_serve_e2e's boot-failure test)."""
    store = tmp_path / "store"
    shutil.copytree(model_store_dir, store, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
    daemon = start_daemon({"workers": {"boot_failure_limit": 1, "failed_cooldown_s": 300}}, workers=1,
                          store_dir=store)
    daemon.wait_until(lambda: zygote(daemon)["state"] == "ready", 60, what="the zygote ready")
    vocoder = next(store.rglob("mb_melgan.tflite"))
    data = bytearray(vocoder.read_bytes())
    data[1000:1010] = b"corrupted!"
    vocoder.write_bytes(bytes(data))
    victim = rows(daemon)["w1"]["pid"]
    os.kill(victim, signal.SIGKILL)
    forked = daemon.wait_until(lambda: ready_with_new_pid(daemon, "w1", victim), 60, 0.05, what="w1 replaced")
    assert f"[worker=w1 pid={forked}] forked by the zygote" in daemon.log()
    code, _, _ = http("POST", daemon.base_url + "/tts", {"text": "预载的模型照常服务。"})
    assert code == 200
