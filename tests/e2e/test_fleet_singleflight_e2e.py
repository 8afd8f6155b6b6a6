"""Fleet single flight end to end: two real daemons sharing one real ``redis-server`` synthesize a text once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import http
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow


def served(daemon) -> int:
    """Jobs the daemon's workers answered: its syntheses."""
    return sum(row["served"] for row in daemon.status()["workers"]["items"])


@pytest.fixture
def redis():
    server = RedisServer()
    server.start()
    yield server
    server.close()


def test_ten_identical_requests_over_two_instances_are_synthesized_once(start_daemon, redis):
    config = {"cache": {"enabled": True, "redis_url": redis.url}}
    daemons = [start_daemon(config, workers=1), start_daemon(config, workers=1)]
    assert all(d.status()["cache"]["backend"] == "redis" and d.status()["cache"]["up"] for d in daemons)
    body = {"text": "两个实例共享同一个缓存，十个相同的并发请求只需要合成一次，所有请求都得到同样的音频。"}
    before = [served(d) for d in daemons]
    start = threading.Barrier(10)  # all ten in flight together, so the second instance meets the lease

    def send(i: int):
        start.wait()
        return http("POST", daemons[i % 2].base_url + "/tts", body)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(send, range(10)))
    assert [code for code, _, _ in results] == [200] * 10, [b[:200] for _, _, b in results]
    assert len({audio for _, _, audio in results}) == 1 and len(results[0][2]) > 10000
    syntheses = [served(d) - b for d, b in zip(daemons, before, strict=True)]
    assert sum(syntheses) == 1, syntheses
    stats = [d.status()["cache"] for d in daemons]
    # The positive control: the instance without the synthesis got it by waiting on the other's lease.
    assert sum(s["fleet_leases_taken"] for s in stats) == 1, stats
    assert sum(s["fleet_waited_hits"] for s in stats) == 1, stats
    assert sum(s["fleet_lease_errors"] + s["fleet_waited_synthesized"] for s in stats) == 0, stats
    assert all(s["single_flight_in_progress"] == 0 for s in stats)
