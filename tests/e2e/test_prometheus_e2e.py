"""A real Prometheus (Debian's ``prometheus`` binary) scraping a running daemon every second, with the shipped
rules loaded: both scrape paths are up (the ``metrics.public`` listener without a token and the admin listener
with the bearer token), the request counter rises after traffic, and recording rules evaluate."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import DaemonProcess, free_port, http
from tests.deploy.conftest import RULES, tool
from tests.support.processes import stop_process

pytestmark = pytest.mark.slow


class Prometheus:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen | None = None

    def start(self, config: dict) -> None:
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [tool("prometheus"), f"--config.file={self.workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=20)

    def query(self, expr: str) -> list[dict]:
        code, _, body = http("GET", f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}", timeout=10)
        assert code == 200, body
        return json.loads(body)["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 60) -> list[dict]:
        """The query's result once it is non-empty; a timeout fails with Prometheus' log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                result = self.query(expr)
            except OSError:  # not listening yet
                result = []
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {expr!r}\n" + self.log_path.read_text()[-3000:])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path, free_port())
    yield server
    server.stop()


def scrape_config(daemon: DaemonProcess, public_port: int, rules: Path) -> dict:
    token_file = daemon.workdir / "state" / "admin.token"
    admin = daemon.admin_url.removeprefix("http://")
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": "tts-ops", "static_configs": [{"targets": [f"127.0.0.1:{public_port}"]}]},
            {"job_name": "tts-ops-admin", "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
             "static_configs": [{"targets": [admin]}]},
        ],
    }


def test_prometheus_scrapes_the_daemon_and_evaluates_the_rules(start_daemon, prometheus, tmp_path: Path):
    public_port = free_port()
    daemon = start_daemon({"metrics": {"public": True, "port": public_port}}, workers=1)
    public = f"http://127.0.0.1:{public_port}/metrics"
    # The public listener needs no token; the admin copy still does (positive and negative side by side).
    assert http("GET", public)[0] == 200
    assert http("GET", daemon.admin_url + "/metrics")[0] == 401
    rules = tmp_path / RULES.name
    shutil.copy(RULES, rules)
    prometheus.start(scrape_config(daemon, public_port, rules))

    # Two scrapes of each target, and both up.
    prometheus.wait_for('count_over_time(up{job=~"tts-ops|tts-ops-admin"}[1m]) >= 2')
    prometheus.wait_for('count(count_over_time(up[1m]) >= 2) == 2')
    up = {r["metric"]["job"]: float(r["value"][1]) for r in prometheus.query("up")}
    assert up == {"tts-ops": 1.0, "tts-ops-admin": 1.0}, up

    # The /tts series is born with the first request; a counter's first sample is no increase for rate(), so
    # one request makes the baseline and three more the increase.
    counter = 'sum(tts_ops_requests_total{job="tts-ops", endpoint="/tts", status="200"})'
    assert prometheus.query(counter) == []  # no synthesis yet
    assert http("POST", daemon.base_url + "/tts", {"text": "普罗米修斯。"})[0] == 200
    before = float(prometheus.wait_for(f"{counter} >= 1")[0]["value"][1])
    for _ in range(3):
        assert http("POST", daemon.base_url + "/tts", {"text": "普罗米修斯。"})[0] == 200
    prometheus.wait_for(f"{counter} >= {before + 3:g}")

    # Recording rules: a gauge ratio at once, a rate once two samples after the traffic exist.
    saturation = prometheus.wait_for('tts_ops:queue:saturation{job="tts-ops"}')
    assert float(saturation[0]["value"][1]) == 0.0
    prometheus.wait_for('tts_ops:requests:rate5m{job="tts-ops", endpoint="/tts", status="200"} > 0')
    build = prometheus.query('tts_ops_build_info{job="tts-ops"}')
    assert build and build[0]["metric"]["engine"] == daemon.status()["engine"], build
    prometheus.stop()
    assert prometheus.proc is not None and prometheus.proc.returncode == 0, prometheus.log_path.read_text()[-3000:]
    # The metrics listener closes with the daemon's other listeners.
    assert daemon.stop() == 0
    with pytest.raises(OSError):
        http("GET", public, timeout=5)
