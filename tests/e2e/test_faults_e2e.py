"""End-to-end faults on a real ``tts-ops serve``: no worker able to serve, and a worker SIGKILLed while its
output is being streamed to a client."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import time
from http.client import HTTPConnection, HTTPResponse, IncompleteRead
from urllib.parse import urlsplit

import pytest
import soundfile as sf

from tests.conftest import http

pytestmark = pytest.mark.slow
LONG_INPUT = "今天天气真好，适合出去散步。我们明天上午十点开会，请准时参加。长文本会被切分成句子，然后逐句合成。" * 8


def worker_rows(daemon) -> list[dict]:
    return daemon.status()["workers"]["items"]


def test_no_worker_ready_answers_503_with_json(start_daemon, model_store_dir, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(model_store_dir, store, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
    # Cold spawns read the damaged disk (a zygote's forks would run the files it preloaded).
    daemon = start_daemon({"workers": {"boot_failure_limit": 1, "failed_cooldown_s": 300, "zygote": False},
                           "server": {"retry_after_s": 7}}, workers=1, store_dir=store)
    # Positive control: the same request is served while the worker is up.
    code, _, _ = http("POST", daemon.base_url + "/tts", {"text": "现在还有工作进程。"})
    assert code == 200
    vocoder = next(store.rglob("mb_melgan.tflite"))
    data = bytearray(vocoder.read_bytes())
    data[1000:1010] = b"corrupted!"
    vocoder.write_bytes(bytes(data))
    victim = worker_rows(daemon)[0]
    os.kill(victim["pid"], signal.SIGKILL)
    daemon.wait_until(lambda: all(r["state"] == "failed" for r in worker_rows(daemon)), 30, what="FAILED state")

    code, headers, body = http("POST", daemon.base_url + "/tts", {"text": "没有工作进程可以合成。"}, timeout=20)
    assert code == 503, body
    assert headers["Content-Type"].startswith("application/json")
    assert "no worker is available" in json.loads(body)["error"]
    assert headers["Retry-After"] == "7"
    code, _, body = http("GET", daemon.base_url + "/health")
    assert (code, body) == (503, b'{"status":"unhealthy"}')
    code, _, body = http("GET", daemon.base_url + "/ready")
    assert code == 503 and json.loads(body)["ready"] is False
    assert daemon.proc.poll() is None  # the daemon itself keeps running


def stream_speech(daemon, text: str) -> tuple[HTTPConnection, HTTPResponse]:
    url = urlsplit(daemon.base_url)
    conn = HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("POST", "/v1/audio/speech", json.dumps({"model": "tts-1", "voice": "alloy", "input": text,
                                                         "response_format": "wav"}),
                 {"Content-Type": "application/json"})
    return conn, conn.getresponse()


def test_worker_killed_mid_stream_ends_the_stream_cleanly_and_is_replaced(start_daemon):
    daemon = start_daemon(workers=2)
    before = {r["id"]: r for r in worker_rows(daemon)}
    # Reference: the whole stream with nothing killed.
    conn, resp = stream_speech(daemon, LONG_INPUT)
    assert resp.status == 200
    reference_bytes = resp.read()
    reference, rate = sf.read(io.BytesIO(reference_bytes), dtype="int16")
    conn.close()
    assert rate == 24000 and len(reference) > 10 * rate

    conn, resp = stream_speech(daemon, LONG_INPUT)
    try:
        assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
        received = resp.read1(65536)  # the first bytes are out: the stream has started
        assert received
        busy = daemon.wait_until(lambda: [r for r in worker_rows(daemon) if r["in_flight"]], 10, 0.01,
                                 what="a chunk in flight on a worker")
        victim = busy[0]
        os.kill(victim["pid"], signal.SIGKILL)
        assert len(received) < len(reference_bytes)  # killed mid-stream, not after it
        started = time.monotonic()
        try:
            while piece := resp.read1(65536):
                received += piece
            outcome = "complete"
        except (IncompleteRead, ConnectionError) as exc:
            outcome = f"aborted: {exc!r}"
        assert time.monotonic() - started < 30  # ended, not hung
    finally:
        conn.close()
    if outcome == "complete":
        # The chunk was retried on the other worker: a full, valid file, as long as the undisturbed one.
        samples, rate = sf.read(io.BytesIO(received), dtype="int16")
        assert rate == 24000 and abs(len(samples) - len(reference)) <= 0.02 * len(reference), (len(samples),
                                                                                              len(reference))
    else:
        # A cleanly terminated error: a truncated chunked body (never a hang), logged by the daemon.
        assert len(received) < len(reference_bytes), outcome
        daemon.wait_until(lambda: "stream aborted" in daemon.log() or "stream failed" in daemon.log(), 10,
                          what="the aborted stream logged")

    daemon.wait_until(lambda: any(r["id"] == victim["id"] and r["state"] == "ready" and r["restarts"] == 1
                                  and r["pid"] != victim["pid"] for r in worker_rows(daemon)), 60,
                      what="the killed worker replaced")
    row = next(r for r in worker_rows(daemon) if r["id"] == victim["id"])
    assert row["last_exit_reason"] == "killed by SIGKILL" and victim["id"] in before
    assert daemon.status()["restarts_by_reason"].get("killed by SIGKILL") == 1
    # Both workers serve again.
    code, _, _ = http("POST", daemon.base_url + "/tts", {"text": "替换之后继续服务。"})
    assert code == 200
    print(f"mid-stream kill outcome: {outcome}")
