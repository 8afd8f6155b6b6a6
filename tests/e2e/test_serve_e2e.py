"""End-to-end: ``tts-ops serve`` as a subprocess with real workers, real signals and concurrent clients."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import soundfile as sf

from tests.conftest import http
from tests.support.load import Load

pytestmark = pytest.mark.slow


def worker_rows(daemon) -> list[dict]:
    return daemon.status()["workers"]["items"]


def test_health_ready_and_tts_contract(daemon):
    code, headers, body = http("GET", daemon.base_url + "/health")
    assert (code, body) == (200, b'{"status":"healthy"}')
    code, _, body = http("GET", daemon.base_url + "/ready")
    ready = json.loads(body)
    assert code == 200 and ready["ready"] and ready["workers"]["ready"] == 1

    code, headers, audio = http("POST", daemon.base_url + "/tts",
                                {"text": "今天天气真好，适合出去散步。", "emotion": "happy", "speed": 1.0})
    assert code == 200 and headers["Content-Type"] == "audio/wav"
    samples, rate = sf.read(io.BytesIO(audio))
    assert rate == 24000 and 1.5 < len(samples) / rate < 5
    assert headers["X-Request-ID"] and headers["X-Worker"] == "w1"
    assert float(headers["X-Synthesis-Time"]) > 0 and float(headers["X-Audio-Duration"]) > 1.5

    code, _, page = http("GET", daemon.base_url + "/")
    assert code == 200 and b"<html" in page.lower()


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 400, "valid JSON"),
    ({"emotion": "happy"}, 400, "'text' is required"),
    ({"text": "   "}, 400, "must not be empty"),
    ({"text": 5}, 400, "must be a string"),
    ({"text": "你好", "emotion": "bored"}, 400, "unknown emotion"),
    ({"text": "你好", "speed": 3}, 400, "between 0.5 and 2.0"),
    ({"text": "你好", "speed": "fast"}, 400, "must be a number"),
    ({"text": "你好", "format": "aac"}, 400, "supported"),
    ({"text": "😀😀！"}, 400, "speakable"),
    ({"text": "好" * 1001}, 413, "limit is 1000"),
])
def test_tts_client_errors_are_json(daemon, body, status, fragment):
    code, headers, data = http("POST", daemon.base_url + "/tts", body)
    assert code == status, data
    assert headers["Content-Type"].startswith("application/json")
    assert fragment in json.loads(data)["error"]


def test_oversized_body_wrong_type_and_unknown_path(daemon):
    code, _, data = http("POST", daemon.base_url + "/tts", b'{"text": "' + b"a" * 70000 + b'"}')
    assert code == 413 and "too large" in json.loads(data)["error"]
    code, _, data = http("POST", daemon.base_url + "/tts", b"text=hi",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert code == 415 and "application/json" in json.loads(data)["error"]
    code, _, data = http("GET", daemon.base_url + "/nope")
    assert code == 404 and "error" in json.loads(data)
    code, headers, data = http("GET", daemon.base_url + "/tts")
    assert code == 405 and "error" in json.loads(data)


def test_kill9_under_load_every_request_succeeds(start_daemon):
    daemon = start_daemon(workers=2)
    victim = worker_rows(daemon)[0]
    with Load(daemon.base_url, clients=4) as load:
        load.wait_for(8)
        # Killed mid-synthesis, so a request must be retried on the other worker (4 clients keep both busy).
        daemon.wait_until(lambda: any(r["id"] == victim["id"] and r["in_flight"] for r in worker_rows(daemon)),
                          30, 0.01, what="a request in flight on the victim")
        os.kill(victim["pid"], signal.SIGKILL)
        daemon.wait_until(lambda: any(r["id"] == victim["id"] and r["state"] == "ready" and r["restarts"] == 1
                                      for r in worker_rows(daemon)), 60, what="worker restart")
        done = len(load.results)
        load.wait_for(done + 8)
    assert load.failures() == [], (load.failures()[:5], [ln for ln in daemon.log().splitlines() if "attempt" in ln])
    row = next(r for r in worker_rows(daemon) if r["id"] == victim["id"])
    assert row["last_exit_reason"] == "killed by SIGKILL" and row["pid"] != victim["pid"]
    status = daemon.status()
    assert status["restarts_by_reason"].get("killed by SIGKILL") == 1
    assert status["totals"]["retried"] >= 1, status["totals"]


def test_sigstop_worker_is_declared_hung_and_replaced(start_daemon):
    daemon = start_daemon(workers=2)
    victim = worker_rows(daemon)[1]
    with Load(daemon.base_url, clients=3) as load:
        load.wait_for(6)
        os.kill(victim["pid"], signal.SIGSTOP)
        daemon.wait_until(lambda: any(r["id"] == victim["id"] and (r["last_exit_reason"] or "").startswith("hung")
                                      for r in worker_rows(daemon)), 30, 0.1, what="hung detection")
        daemon.wait_until(lambda: all(r["state"] == "ready" for r in worker_rows(daemon)), 60, what="replacement")
        load.wait_for(len(load.results) + 6)
    row = next(r for r in worker_rows(daemon) if r["id"] == victim["id"])
    # Declared by the failure_threshold-th (3rd) failed probe at the latest, and a stopped process needs KILL.
    failed_probes = int(row["last_exit_reason"].split()[1])
    assert 1 <= failed_probes <= 3, row["last_exit_reason"]
    assert row["last_exit_code"] == -signal.SIGKILL and row["pid"] != victim["pid"] and row["restarts"] == 1
    assert daemon.status()["restarts_by_reason"] == {"hung": 1}
    assert load.failures() == [], load.failures()[:5]


def test_boot_failure_ends_failed_without_spinning(start_daemon, model_store_dir, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(model_store_dir, store, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
    # Cold spawns: each one reads and verifies the model on disk (a zygote's forks run the files it verified at its
    # own start; tests/e2e/test_zygote_e2e.py).
    daemon = start_daemon({"workers": {"boot_failure_limit": 2, "failed_cooldown_s": 300, "zygote": False}},
                          workers=2, store_dir=store)
    vocoder = next(store.rglob("mb_melgan.tflite"))
    data = bytearray(vocoder.read_bytes())
    data[1000:1010] = b"corrupted!"
    vocoder.write_bytes(bytes(data))
    victim = worker_rows(daemon)[0]
    os.kill(victim["pid"], signal.SIGKILL)
    daemon.wait_until(lambda: any(r["id"] == victim["id"] and r["state"] == "failed" for r in worker_rows(daemon)),
                      60, what="FAILED state")
    row = next(r for r in worker_rows(daemon) if r["id"] == victim["id"])
    assert "boot failure (exit 3)" in row["last_exit_reason"]
    # SIGKILL, restart #1 fails to boot, restart #2 fails to boot: FAILED, next try only after the cool-down.
    assert row["restarts"] == 2
    assert "boot failed 2 times in a row; retry in 300s" in daemon.log()
    code, _, body = http("GET", daemon.base_url + "/health")
    assert (code, body) == (200, b'{"status":"healthy"}')
    code, _, _ = http("POST", daemon.base_url + "/tts", {"text": "还有一个工作进程在服务。"})
    assert code == 200
    assert "mb_melgan.tflite" in daemon.log()
    row = next(r for r in worker_rows(daemon) if r["id"] == victim["id"])
    assert row["state"] == "failed" and row["restarts"] == 2  # still waiting out the cool-down, not spinning


def run_cli(daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_ops.cli", *args, "--config", str(daemon.config_path)],
                          capture_output=True, text=True, timeout=300, env=daemon.env)


def test_rolling_restart_and_hup_under_load_drop_nothing(start_daemon):
    # Slots (id) survive replacement; the process key (slot#serial) names each process, so new keys mean new
    # processes while the ids the CLI and metrics use stay w1, w2.
    daemon = start_daemon(workers=2)
    before = {r["key"] for r in worker_rows(daemon)}
    with Load(daemon.base_url, clients=4) as load:
        load.wait_for(6)
        result = run_cli(daemon, "restart")
        assert result.returncode == 0, result.stderr
        assert "rolling restart done" in result.stdout
        after_restart = {r["key"] for r in worker_rows(daemon)}
        assert after_restart.isdisjoint(before)
        assert {r["id"] for r in worker_rows(daemon)} == {"w1", "w2"}
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_until(lambda: {r["key"] for r in worker_rows(daemon)}.isdisjoint(after_restart)
                          and all(r["state"] == "ready" for r in worker_rows(daemon)), 90, what="HUP rolling restart")
        load.wait_for(len(load.results) + 6)
    assert load.failures() == [], load.failures()[:5]
    assert len(load.results) > 20
    assert daemon.status()["reloads"] == 1
    assert {r["id"] for r in worker_rows(daemon)} == {"w1", "w2"}


def test_term_under_load_completes_in_flight_and_exits_zero(start_daemon):
    from concurrent.futures import ThreadPoolExecutor

    daemon = start_daemon(workers=2)
    long_text = "这是一个比较长的句子，用来让合成多花一点时间。" * 6
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(http, "POST", daemon.base_url + "/tts", {"text": long_text}) for _ in range(3)]
        # All three accepted: two on workers, one queued.
        daemon.wait_until(lambda: (lambda s: s["in_flight"] + s["queue_depth"] == 3)(daemon.status()), 30, 0.01,
                          what="3 requests in flight or queued")
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(60)
        statuses = [f.result()[0] for f in futures]
    assert code == 0, daemon.log()[-3000:]
    assert statuses == [200, 200, 200], daemon.log()[-3000:]
    assert "stopped" in daemon.log()


def test_overload_sheds_with_503_and_retry_after(start_daemon):
    daemon = start_daemon({"server": {"queue_limit": 1, "retry_after_s": 3}}, workers=1)
    long_text = "排队测试需要一段较长的文本，这样每个请求都会占用工作进程一段时间。" * 4
    with Load(daemon.base_url, clients=6, body={"text": long_text}, max_requests=12) as load:
        load.wait_for(12, timeout=120)
    statuses = load.statuses
    assert statuses[503] >= 1 and statuses[200] >= 2, statuses
    assert set(statuses) <= {200, 503}
    shed = next(detail for status, detail in load.results if status == 503)
    assert "busy" in shed
    # The header itself: with the worker busy and the one queue place taken, the next request must be shed.
    from concurrent.futures import ThreadPoolExecutor

    longer = long_text * 2  # different texts: nothing shares a synthesis
    with ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(http, "POST", daemon.base_url + "/tts", {"text": longer + str(i)}) for i in range(2)]
        daemon.wait_until(lambda: (lambda s: (s["in_flight"], s["queue_depth"]) == (1, 1))(daemon.status()), 60,
                          0.01, what="worker busy and queue full")
        code, headers, body = http("POST", daemon.base_url + "/tts", {"text": "这个请求应该被拒绝。"})
        assert [f.result()[0] for f in busy] == [200, 200]
    assert code == 503, body
    assert headers["Retry-After"] == "3" and "busy" in json.loads(body)["error"]


def test_sd_notify_protocol_on_a_real_socket(start_daemon, tmp_path):
    path = Path("/tmp") / f"notify-{os.getpid()}-{time.monotonic_ns()}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def receive() -> None:
        # Read from the start, as systemd does: a datagram socket queues only net.unix.max_dgram_qlen (often 10)
        # messages, so an unread socket would drop READY=1 behind the watchdog pings of a slow boot.
        while not done.is_set():
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                pass

    def drain(until: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(until in m for m in list(messages)):
                return
            time.sleep(0.05)
        raise AssertionError(f"no {until!r} in {messages}")

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    try:
        daemon = start_daemon(workers=1, env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
        drain("READY=1")
        ready = next(m for m in messages if "READY=1" in m)
        assert "STATUS=1/1 workers ready" in ready
        drain("WATCHDOG=1")
        daemon.proc.send_signal(signal.SIGHUP)
        drain("RELOADING=1")
        assert any("MONOTONIC_USEC=" in m for m in messages if "RELOADING=1" in m)
        messages.clear()
        drain("READY=1", 90)
        daemon.proc.send_signal(signal.SIGTERM)
        drain("STOPPING=1")
        assert daemon.proc.wait(60) == 0
    finally:
        done.set()
        receiver.join(5)
        sock.close()
        path.unlink(missing_ok=True)


def test_admin_api_auth_scale_and_restart(daemon):
    code, headers, body = http("GET", daemon.admin_url + "/admin/status")
    assert code == 401 and "token" in json.loads(body)["error"]
    code, _, _ = http("GET", daemon.admin_url + "/admin/status", token="wrong")
    assert code == 401
    token_file = daemon.workdir / "state" / "admin.token"
    assert token_file.stat().st_mode & 0o777 == 0o600

    result = run_cli(daemon, "scale", "2")
    assert result.returncode == 0, result.stderr
    daemon.wait_ready(2)
    status = run_cli(daemon, "status")
    assert status.returncode == 0 and "2/2 workers ready" in status.stdout, status.stdout
    first_row = worker_rows(daemon)[0]
    first = first_row["id"]
    result = run_cli(daemon, "restart", "--worker", first)
    assert result.returncode == 0 and f"worker {first} replaced" in result.stdout, result.stderr
    # The replacement takes over the slot (stable ids), as a new process.
    replaced = next(r for r in worker_rows(daemon) if r["id"] == first)
    assert replaced["pid"] != first_row["pid"] and replaced["key"] != first_row["key"]
    result = run_cli(daemon, "restart", "--worker", "w99")
    assert result.returncode == 1 and "no worker 'w99'" in result.stderr
    code, _, body = http("POST", daemon.admin_url + "/admin/scale", {"workers": 0}, token=daemon.token)
    assert code == 400 and "between 1 and 64" in json.loads(body)["error"]
    result = run_cli(daemon, "scale", "1")
    assert result.returncode == 0
    daemon.wait_until(lambda: len(worker_rows(daemon)) == 1, 30, what="scale down")


def test_second_term_forces_exit_and_kills_the_workers(start_daemon):
    from concurrent.futures import ThreadPoolExecutor

    daemon = start_daemon({"server": {"graceful_timeout_s": 120}}, workers=1)
    pid = daemon.status()["workers"]["items"][0]["pid"]
    long_text = "这是一个很长的句子，用来让合成持续足够长的时间，好让第二个信号在它结束之前到达。" * 20
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(http, "POST", daemon.base_url + "/tts", {"text": long_text})
        daemon.wait_until(lambda: daemon.status()["in_flight"] == 1, 30, 0.01, what="the request in flight")
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.wait_until(lambda: "send again to force" in daemon.log(), 30, 0.05, what="graceful shutdown")
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(30)
        try:
            answered = pending.result(60)[0]
        except OSError:
            answered = None  # the connection was cut
    log = daemon.log()
    assert code == 1, log[-3000:]
    assert answered != 200  # forcing gives up on the synthesis in flight instead of waiting for it
    assert "stopped: forced" in log
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "is closed" not in log, log[-2000:]   # the killed worker was reaped before the loop closed
