"""Drain-first shutdown a load balancer can see, and a runtime scale that survives SIGHUP, on real daemons.

On TERM (or ``tts-ops drain``) the health checks fail at once while the listener keeps serving for
``server.drain_delay_s``, with ``Connection: close`` on every answer; only then does it stop accepting."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import http

pytestmark = pytest.mark.slow
LONG_TEXT = "这是一个比较长的句子，用来让合成多花一点时间，好在排空期间观察健康检查。" * 6


def run_cli(daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_ops.cli", *args, "--config", str(daemon.config_path)],
                          capture_output=True, text=True, timeout=120, env=daemon.env)


def get_health(daemon) -> int:
    return http("GET", daemon.base_url + "/health", timeout=5)[0]


def test_term_fails_health_checks_first_while_still_serving(start_daemon):
    daemon = start_daemon({"server": {"drain_delay_s": 4}}, workers=1)
    host = urlsplit(daemon.base_url)
    keep_alive = HTTPConnection(host.hostname, host.port, timeout=30)  # as a load balancer holds one
    keep_alive.request("GET", "/health")
    first = keep_alive.getresponse()
    assert first.status == 200 and first.getheader("Connection") != "close"
    first.read()
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(http, "POST", daemon.base_url + "/tts", {"text": LONG_TEXT})
        daemon.wait_until(lambda: daemon.status()["in_flight"] == 1, 30, 0.01, what="a request in flight")
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.wait_until(lambda: get_health(daemon) == 503, 5, 0.05, what="/health failing")
        code, _, body = http("GET", daemon.base_url + "/ready", timeout=5)
        ready = json.loads(body)
        assert code == 503 and ready["draining"] and ready["accepting"] and not ready["ready"]
        assert daemon.status()["state"] == "draining"
        # A new request during the delay is served, on the connection the balancer already held, which is then
        # closed by the server instead of being cut later.
        keep_alive.request("POST", "/tts", body=json.dumps({"text": "排空期间的新请求。"}).encode(),
                           headers={"Content-Type": "application/json"})
        served = keep_alive.getresponse()
        assert served.status == 200 and served.read()[:4] == b"RIFF"
        assert served.getheader("Connection") == "close"
        exit_code = daemon.proc.wait(60)
        assert in_flight.result()[0] == 200
    keep_alive.close()
    log = daemon.log()
    assert exit_code == 0, log[-3000:]
    assert "daemon running -> draining" in log and "daemon draining -> stopping" in log
    assert log.index("daemon draining -> stopping") > log.index("daemon running -> draining")


def test_cli_drain_stops_the_daemon_like_term(start_daemon):
    daemon = start_daemon({"server": {"drain_delay_s": 1}}, workers=1)
    result = run_cli(daemon, "drain")
    assert result.returncode == 0 and "draining" in result.stdout, result.stderr
    assert daemon.proc.wait(60) == 0
    assert "POST /admin/drain: graceful shutdown" in daemon.log()


def rewrite_count(daemon, count: int) -> None:
    cfg = yaml.safe_load(daemon.config_path.read_text())
    cfg["workers"]["count"] = count
    daemon.config_path.write_text(yaml.safe_dump(cfg))


def reload_and_wait(daemon) -> None:
    reloads = daemon.status()["reloads"]
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_until(lambda: daemon.status()["reloads"] == reloads + 1, 120, what="the reload")


def test_runtime_scale_survives_hup_until_the_file_changes_or_reset(start_daemon):
    daemon = start_daemon(workers=1)
    assert run_cli(daemon, "scale", "2").returncode == 0
    daemon.wait_ready(2)
    reload_and_wait(daemon)
    workers = daemon.status()["workers"]
    assert (workers["target"], workers["configured"], workers["override"]) == (2, 1, 2)
    status = run_cli(daemon, "status")
    assert "runtime scale; the file says 1" in status.stdout, status.stdout
    assert "keeping the runtime scale of 2 workers" in daemon.log()

    rewrite_count(daemon, 3)  # the operator edited the file: the newer decision wins
    reload_and_wait(daemon)
    workers = daemon.status()["workers"]
    assert (workers["target"], workers["configured"], workers["override"]) == (3, 3, None)

    assert run_cli(daemon, "scale", "1").returncode == 0
    result = run_cli(daemon, "scale", "--reset")
    assert result.returncode == 0 and "3 workers" in result.stdout, result.stdout + result.stderr
    assert daemon.status()["workers"]["override"] is None
    bad = run_cli(daemon, "scale", "2", "--reset")
    assert bad.returncode == 2 and "either a worker count or --reset" in bad.stderr
