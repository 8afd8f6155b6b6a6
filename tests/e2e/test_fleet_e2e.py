"""A fleet on real parts: two ``tts-ops serve`` instances behind a real HAProxy running the committed
``deploy/haproxy.cfg``, sharing one real ``redis-server`` (cache) and one output directory (saved files).

Checked: a rolling upgrade under load fails no request; a kill -9 fails only the killed instance's in-flight
requests and HAProxy stops routing to it within its check interval; identical concurrent requests spread over
both instances cause one synthesis in the fleet; a download URL from one instance works through the balancer
whichever instance answers."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.conftest import DaemonProcess, http, short_tmpdir
from tests.support.haproxy import HAProxy
from tests.support.load import Load
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow
# Above HAProxy's detection time (inter 1 s x fall 2) so it marks a draining instance down before it closes.
DRAIN_DELAY_S = 3


def header(headers: dict[str, str], name: str) -> str | None:
    """HAProxy sends header names in lower case (HTTP/1 allows any case)."""
    return {key.lower(): value for key, value in headers.items()}.get(name.lower())


class Fleet:
    """Two instances (tts1, tts2) with fixed ports, so an instance can be stopped and started again in place."""

    def __init__(self, start_daemon, redis: RedisServer, output_dir: Path) -> None:
        self._start = start_daemon
        self.redis = redis
        self.output_dir = output_dir
        self.instances: dict[str, DaemonProcess] = {}
        self.ports: dict[str, tuple[int, int]] = {}

    def config(self, name: str) -> dict:
        port, admin_port = self.ports[name]
        return {"server": {"port": port, "drain_delay_s": DRAIN_DELAY_S},
                "admin": {"port": admin_port},
                "cache": {"enabled": True, "redis_url": self.redis.url},
                "output": {"save": True, "dir": str(self.output_dir)}}

    def start(self, name: str) -> DaemonProcess:
        if name not in self.ports:
            daemon = self._start({"server": {"drain_delay_s": DRAIN_DELAY_S},
                                  "cache": {"enabled": True, "redis_url": self.redis.url},
                                  "output": {"save": True, "dir": str(self.output_dir)}}, workers=1)
            self.ports[name] = (int(daemon.base_url.rsplit(":", 1)[1]), int(daemon.admin_url.rsplit(":", 1)[1]))
        else:
            daemon = self._start(self.config(name), workers=1)
        self.instances[name] = daemon
        return daemon

    def public_ports(self) -> list[int]:
        return [self.ports[name][0] for name in ("tts1", "tts2")]

    def syntheses(self) -> int:
        """Requests the workers of every running instance served: one per synthesis."""
        return sum(w["served"] for d in self.instances.values() if d.proc.poll() is None
                   for w in d.status()["workers"]["items"])


@pytest.fixture
def fleet(start_daemon):
    redis = RedisServer()
    redis.start()
    output_dir = short_tmpdir("ttsfleet-out-")
    fleet = Fleet(start_daemon, redis, output_dir)
    fleet.start("tts1")
    fleet.start("tts2")
    lb = HAProxy(fleet.public_ports())
    lb.start()
    try:
        lb.wait_state("tts1", "UP")
        lb.wait_state("tts2", "UP")
        yield fleet, lb
    finally:
        lb.close()
        redis.close()


def test_rolling_upgrade_under_load_fails_no_request(fleet):
    fleet, lb = fleet
    with Load(lb.url, clients=4, unique=True, timeout_s=400) as load:
        load.wait_for(8)
        for name in ("tts1", "tts2"):
            old = fleet.instances[name]
            old.proc.send_signal(signal.SIGTERM)
            lb.wait_state(name, "DOWN", timeout=DRAIN_DELAY_S + 5)  # seen down while it still serves
            assert old.proc.wait(60) == 0, old.log()[-3000:]
            fleet.start(name)  # the "upgraded" instance, on the same ports
            lb.wait_state(name, "UP")
            load.wait_for(len(load.results) + 6, timeout=120)
    assert load.failures() == [], load.failures()[:5]
    assert len(load.results) >= 20


def test_kill_9_fails_only_in_flight_requests_and_the_lb_stops_routing(fleet):
    fleet, lb = fleet
    victim = fleet.instances["tts1"]
    pids = [victim.proc.pid] + [child.pid for child in psutil.Process(victim.proc.pid).children(recursive=True)]
    clients = 4
    with Load(lb.url, clients=clients, unique=True, timeout_s=300) as load:
        load.wait_for(8)
        killed_at = time.monotonic()
        for pid in pids:  # the host is gone: the daemon and its workers at once
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Dead once the kernel has torn the daemon down (its listener closed): a request connected in the few ms
        # SIGKILL takes is in flight at the death, like one sent before it.
        victim.proc.wait(10)
        died_at = time.monotonic()
        detected_s = lb.wait_state("tts1", "DOWN", timeout=15) + (died_at - killed_at)
        routed_off = time.monotonic()
        after = load.wait_for_started_after(routed_off, 12, timeout=120)
    failed = [sent for sent in load.sent if sent.status != 200]
    # Only requests already sent when the instance died may fail: at most one per client.
    assert len(failed) <= clients, failed
    assert all(sent.started < died_at for sent in failed), (killed_at, died_at, failed)
    assert all(sent.status == 200 for sent in after)
    print(f"\nkill -9: {len(failed)} failed of {len(load.sent)}; HAProxy marked it DOWN after {detected_s:.2f}s")


def test_identical_requests_over_both_instances_cause_one_synthesis(fleet):
    fleet, lb = fleet
    before = fleet.syntheses()
    text = "十个相同的请求，整个集群只合成一次。"
    targets = [fleet.instances["tts1"].base_url, fleet.instances["tts2"].base_url] * 5
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda url: http("POST", url + "/tts", {"text": text}), targets))
    assert [code for code, _, _ in answers] == [200] * 10
    assert len({body for _, _, body in answers}) == 1
    assert fleet.syntheses() - before == 1, [header(h, "X-Cache") for _, h, _ in answers]


def test_download_url_works_through_the_lb_whichever_instance_answers(fleet):
    fleet, lb = fleet
    code, headers, audio = http("POST", lb.url + "/tts", {"text": "下载链接在整个集群都有效。"})
    assert code == 200, audio
    url = header(headers, "X-Output-URL")
    assert url is not None, headers
    for base in [lb.url] * 6 + [fleet.instances["tts1"].base_url, fleet.instances["tts2"].base_url]:
        code, _, body = http("GET", base + url)
        assert (code, body) == (200, audio), (base, code, body[:200])


def test_no_instance_up_is_a_json_503_with_retry_after(fleet):
    fleet, lb = fleet
    for daemon in fleet.instances.values():
        daemon.proc.send_signal(signal.SIGTERM)
    for name in fleet.instances:
        lb.wait_state(name, "DOWN", timeout=DRAIN_DELAY_S + 5)
    code, headers, body = http("POST", lb.url + "/tts", {"text": "没有可用的实例。"})
    assert code == 503 and header(headers, "Retry-After") == "2"
    assert "no tts-ops instance" in json.loads(body)["error"]
