"""End-to-end: the only worker is SIGKILLed under a request on a real ``tts-ops serve``. The retry cannot happen
(no other worker is ready or booting), so the client gets 503 + Retry-After at once instead of a 504 after
``server.request_timeout_s``; the worker is restarted and the next request is served."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest

from tests.conftest import http

pytestmark = pytest.mark.slow
# Near the 1000-character limit: a synthesis long enough to be caught in flight.
SLOW_TEXT = ("今天天气真好，适合出去散步。我们明天上午十点开会，请准时参加。" * 30)[:950]


def worker_rows(daemon) -> list[dict]:
    return daemon.status()["workers"]["items"]


def test_retry_without_another_worker_answers_503_and_the_daemon_recovers(start_daemon):
    # A crash backoff longer than the retry takes to run: the successor cannot be STARTING yet when the retry
    # asks, so the outcome does not depend on who wins that race.
    daemon = start_daemon({"workers": {"first_restart_delay_s": 3}, "server": {"retry_after_s": 4}}, workers=1)
    [victim] = worker_rows(daemon)
    outcome: dict = {}

    def slow_request() -> None:
        # A client timeout well below request_timeout_s (120 s): waiting for the worker's restart would fail here.
        outcome["reply"] = http("POST", daemon.base_url + "/tts", {"text": SLOW_TEXT}, timeout=30)

    client = threading.Thread(target=slow_request, daemon=True)
    client.start()
    daemon.wait_until(lambda: any(r["in_flight"] for r in worker_rows(daemon)), 20, 0.01,
                      what="the request in flight on the worker")
    os.kill(victim["pid"], signal.SIGKILL)
    client.join(35)
    assert not client.is_alive() and "reply" in outcome, "the request did not finish"

    code, headers, body = outcome["reply"]
    assert code == 503, body
    assert headers["Retry-After"] == "4"
    assert "no other worker" in json.loads(body)["error"]
    assert "attempt 1 failed" in daemon.log()  # the connection did break under the request: it was retried

    daemon.wait_until(lambda: any(r["state"] == "ready" and r["pid"] != victim["pid"] for r in worker_rows(daemon)),
                      60, what="the killed worker restarted")
    code, _, body = http("POST", daemon.base_url + "/tts", {"text": "重启之后继续服务。"}, timeout=30)
    assert code == 200, body
