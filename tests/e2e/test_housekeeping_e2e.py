"""End-to-end housekeeping on a real ``tts-ops serve``: rotated logs beyond ``logging.keep`` are pruned and expired
ones are deleted by the cleanup job while the live log keeps receiving lines; and the restart, RSS and
log-rotation metrics on the admin listener's ``/metrics`` follow what the daemon really did."""

from __future__ import annotations

import gzip
import json
import os
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import http

pytestmark = pytest.mark.slow


def admin_post(daemon, path: str) -> dict:
    code, _, body = http("POST", daemon.admin_url + path, token=daemon.token)
    assert code == 200, body
    return json.loads(body)


def rotated_access_logs(log_dir) -> set[str]:
    """Rotated access logs, by name without the .gz the background compression adds."""
    return {p.name.removesuffix(".gz") for p in log_dir.glob("access.log.*") if not p.name.endswith(".tmp")}


def read_rotated(path) -> str:
    """A rotated log's text, whether the background compression has run yet or not."""
    gz = path.with_name(path.name + ".gz")
    return gzip.decompress(gz.read_bytes()).decode() if gz.exists() else path.read_text()


def logged_request(daemon, request_id: str) -> None:
    """A request whose access line is in the live access.log once this returns."""
    assert http("GET", daemon.base_url + "/health", headers={"X-Request-ID": request_id})[0] == 200
    access = daemon.workdir / "logs" / "access.log"
    daemon.wait_until(lambda: f"request={request_id}" in access.read_text(), 10, 0.05,
                      what=f"access line of {request_id}")


def test_rotated_logs_beyond_keep_and_past_retention_are_deleted(start_daemon):
    daemon = start_daemon({"logging": {"keep": 2}, "output": {"rotated_log_retention_days": 30}}, workers=1)
    log_dir = daemon.workdir / "logs"

    # Cleanup by age: an expired rotated log goes, a fresh one and a file the log manager does not own stay.
    expired, fresh, foreign = (log_dir / "access.log.20200101-000000.gz", log_dir / "error.log.20990101-000000.gz",
                               log_dir / "notes.txt")
    for path in (expired, fresh, foreign):
        path.write_bytes(b"planted")
    old = time.time() - 60 * 86400
    for path in (expired, foreign):
        os.utime(path, (old, old))
    result = admin_post(daemon, "/admin/maintenance/cleanup")["last_result"]
    assert result["rotated_logs_deleted"] == 1, result
    assert not expired.exists() and fresh.exists() and foreign.exists()
    fresh.unlink()

    # Keep-N: five rotations of a non-empty access.log; only the two newest rotated files remain.
    rotated = []
    for n in range(5):
        logged_request(daemon, f"before-rotation-{n}")
        done = admin_post(daemon, "/admin/maintenance/rotate_logs")["last_result"]
        rotated.append(os.path.basename(done["access"]["file"]).removesuffix(".gz"))
    assert len(set(rotated)) == 5, rotated
    daemon.wait_until(lambda: rotated_access_logs(log_dir) == set(rotated[-2:])
                      and not list(log_dir.glob("*.gz.tmp")), 20, 0.1,
                      what=f"only the 2 newest rotated access logs left of {rotated}")
    assert daemon.status()["logs"]["pruned_files"] >= 3  # the access logs; error/synthesis ones may add to it

    # The kept files are the newest two, with their own lines; the live file still receives lines, and only it.
    kept = [read_rotated(log_dir / name) for name in rotated[-2:]]
    assert "request=before-rotation-3" in kept[0] and "request=before-rotation-4" in kept[1]
    logged_request(daemon, "after-rotations")
    assert not any("after-rotations" in text for text in kept)
    assert daemon.proc.poll() is None


def scrape(daemon) -> dict[tuple[str, tuple], float]:
    code, _, body = http("GET", daemon.admin_url + "/metrics", token=daemon.token)
    assert code == 200, body
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def rss_by_worker(samples) -> dict[str, float]:
    return {dict(labels)["worker"]: value for (name, labels), value in samples.items()
            if name == "tts_ops_worker_rss_bytes"}


def scrape_with_rss_of(daemon, ids: set[str]):
    samples = scrape(daemon)
    return samples if set(rss_by_worker(samples)) == ids else None


def test_restart_rss_and_rotation_metrics_follow_the_daemon(start_daemon):
    daemon = start_daemon({"workers": {"watchdog_interval_s": 0.5}}, workers=2)
    ids = {r["id"] for r in daemon.status()["workers"]["items"]}
    samples = daemon.wait_until(lambda: scrape_with_rss_of(daemon, ids), 20,
                                what="an RSS sample of every ready worker")
    assert all(value > 0 for value in rss_by_worker(samples).values()), rss_by_worker(samples)
    assert samples[("tts_ops_workers", (("state", "ready"),))] == 2
    sigkill = ("tts_ops_worker_restarts_total", (("reason", "killed by SIGKILL"),))
    assert sigkill not in samples  # no restart yet

    victim = daemon.status()["workers"]["items"][0]
    os.kill(victim["pid"], signal.SIGKILL)
    daemon.wait_until(lambda: any(r["id"] == victim["id"] and r["state"] == "ready" and r["pid"] != victim["pid"]
                                  for r in daemon.status()["workers"]["items"]), 60, what="the killed worker back")
    samples = scrape(daemon)
    assert samples[sigkill] == 1
    restarts = {r["id"]: r["restarts"] for r in daemon.status()["workers"]["items"]}
    assert restarts == {victim["id"]: 1, **{i: 0 for i in ids - {victim["id"]}}}

    rotations = ("tts_ops_log_rotations_total", ())
    before = samples[rotations]
    assert http("GET", daemon.base_url + "/health")[0] == 200  # access.log is not empty
    done = admin_post(daemon, "/admin/maintenance/rotate_logs")["last_result"]
    assert "access" in done, done
    assert scrape(daemon)[rotations] == before + len(done)
