"""End-to-end operations: log rotation under load, output store and cleanup, Prometheus metrics, SIGUSR1."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import http
from tests.support.load import Load

pytestmark = pytest.mark.slow
ACCESS_LINE = re.compile(r'^\S+ \S+ "(GET|POST) (/\S*) HTTP/1\.1" (\d{3}) (\d+) [\d.]+ms cache=\S+ worker=\S+ '
                         r'request=[0-9A-Za-z._-]{1,64}$')
REQUEST_ID = re.compile(r" request=(\S+)$")


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


def access_lines(log_dir: Path) -> list[str]:
    lines = []
    for path in sorted(log_dir.glob("access.log*")):
        if not path.name.endswith(".tmp"):
            lines += read_lines(path)
    return lines


def test_rotation_under_load_loses_no_access_line(start_daemon):
    daemon = start_daemon({"cache": {"enabled": True}}, workers=2)
    log_dir = daemon.workdir / "logs"
    with Load(daemon.base_url, clients=8, max_requests=400) as load:
        for _ in range(5):
            # Bounded by the budget: with cache hits the 400 requests can all be done before the 5th rotation.
            load.wait_for(min(400, len(load.results) + 20))
            code, _, body = http("POST", daemon.admin_url + "/admin/maintenance/rotate_logs", token=daemon.token)
            assert code == 200, body
        load.wait_for(400, timeout=120)
    assert load.failures() == []
    daemon.wait_until(lambda: not list(log_dir.glob("*.gz.tmp")), 10, what="gzip done")
    lines = access_lines(log_dir)
    sent = Counter(s.request_id for s in load.sent)
    # Each id sent once (the budget can be overshot by up to clients - 1 requests already on their way).
    assert len(sent) == len(load.results) >= 400
    # Compared as multisets of request ids, not counts: a lost line plus a duplicated one would cancel out.
    logged = Counter(REQUEST_ID.search(line).group(1) for line in lines if '"POST /tts ' in line)
    assert logged == sent, (sorted((sent - logged).elements())[:5], sorted((logged - sent).elements())[:5])
    bad = [line for line in lines if not ACCESS_LINE.match(line)]
    assert bad == [], bad[:3]
    assert len(list(log_dir.glob("access.log.*.gz"))) >= 1
    status = daemon.status()
    rotate = next(job for job in status["maintenance"] if job["id"] == "rotate_logs")
    assert rotate["runs"] >= 5 and rotate["next_run"]
    synthesis = [json.loads(line) for path in sorted(log_dir.glob("synthesis.log*")) for line in read_lines(path)]
    synthesized = Counter(record["request_id"] for record in synthesis)
    assert synthesized == sent, (sorted((sent - synthesized).elements())[:5],
                                 sorted((synthesized - sent).elements())[:5])
    assert all("text" not in record and len(record["text_sha256"]) == 64 for record in synthesis)
    assert {record["cache"] for record in synthesis} <= {"HIT", "MISS"}


def test_saved_outputs_download_and_cleanup_touches_only_its_own_files(start_daemon, tmp_path):
    daemon = start_daemon({"output": {"save": True, "retention_days": 7}}, workers=1)
    code, headers, audio = http("POST", daemon.base_url + "/tts", {"text": "保存这段音频。"})
    assert code == 200
    url = headers["X-Output-URL"]
    assert re.fullmatch(r"/output/\d{8}-\d{6}-[0-9a-f]{32}\.wav", url)
    code, headers, saved = http("GET", daemon.base_url + url)
    assert code == 200 and saved == audio and headers["Content-Type"] == "audio/wav"
    # File names never come from the client: two requests with the same X-Request-ID get two files.
    urls = {http("POST", daemon.base_url + "/tts", {"text": f"第{i}段。"}, headers={"X-Request-ID": "same-id"})[1]
            ["X-Output-URL"] for i in range(2)}
    assert len(urls) == 2 and not any("same-id" in u for u in urls)
    for bad in ("/output/..%2F..%2Fetc%2Fpasswd", "/output/daemon.log", "/output/nope.wav"):
        code, _, body = http("GET", daemon.base_url + bad)
        assert code == 404 and json.loads(body)["error"], bad

    out_dir = daemon.workdir / "output"
    outside = tmp_path / "outside"
    outside.mkdir()
    old = time.time() - 30 * 86400
    expired = out_dir / "20200101-000000-aaaaaaaa.wav"
    expired.write_bytes(b"old")
    foreign_old = out_dir / "notes.txt"
    foreign_old.write_text("not ours")
    victim_outside = outside / "20200101-000000-bbbbbbbb.wav"
    victim_outside.write_bytes(b"outside")
    link = out_dir / "20200101-000000-cccccccc.wav"
    link.symlink_to(victim_outside)
    for path in (expired, foreign_old, victim_outside):
        os.utime(path, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)

    code, _, body = http("POST", daemon.admin_url + "/admin/maintenance/cleanup", token=daemon.token)
    assert code == 200, body
    result = json.loads(body)["last_result"]
    assert result["outputs_deleted"] == 1
    assert not expired.exists()
    assert foreign_old.exists() and victim_outside.exists() and link.is_symlink()
    assert (out_dir / url.rsplit("/", 1)[1]).exists()  # fresh output kept
    code, _, body = http("POST", daemon.admin_url + "/admin/maintenance/nope", token=daemon.token)
    assert code == 404 and "cleanup" in json.loads(body)["error"]


def test_metrics_parse_and_count_the_requests_made(start_daemon):
    daemon = start_daemon({"cache": {"enabled": True}}, workers=1)
    for _ in range(3):
        assert http("POST", daemon.base_url + "/tts", {"text": "指标测试。"})[0] == 200
    assert http("POST", daemon.base_url + "/tts", {"text": ""})[0] == 400
    for _ in range(2):
        assert http("GET", daemon.base_url + "/health")[0] == 200
    code, headers, body = http("GET", daemon.admin_url + "/metrics", token=daemon.token)
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0)
    assert value("tts_ops_requests_total", endpoint="/tts", status="200") == 3
    assert value("tts_ops_requests_total", endpoint="/tts", status="400") == 1
    assert value("tts_ops_requests_total", endpoint="/health", status="200") == 2
    assert value("tts_ops_request_latency_seconds_count", endpoint="/tts") == 4
    assert value("tts_ops_cache_hits_total") == 2 and value("tts_ops_cache_misses_total") == 1
    assert value("tts_ops_synthesis_seconds_count") == 1
    assert value("tts_ops_workers", state="ready") == 1
    assert value("tts_ops_queue_depth") == 0
    code, _, _ = http("GET", daemon.admin_url + "/metrics")
    assert code == 401


def test_sigusr1_reopens_logs_after_an_external_rename(start_daemon):
    daemon = start_daemon(workers=1)
    log_dir = daemon.workdir / "logs"
    assert http("GET", daemon.base_url + "/health")[0] == 200
    (log_dir / "access.log").rename(log_dir / "access.log.external")
    daemon.proc.send_signal(signal.SIGUSR1)
    daemon.wait_until(lambda: (log_dir / "access.log").exists(), 10, what="reopened access.log")
    marker = "after-reopen-0001"
    assert http("GET", daemon.base_url + "/ready", headers={"X-Request-ID": marker})[0] == 200
    daemon.wait_until(lambda: marker in (log_dir / "access.log").read_text(), 10, what="line in new file")
    assert marker not in (log_dir / "access.log.external").read_text()
