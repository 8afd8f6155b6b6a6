"""End-to-end cache behaviour: a real daemon with the in-process cache or a real ``redis-server`` that the test
kills and restarts under load."""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import http
from tests.support.load import Load
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow


def served(daemon) -> int:
    return sum(row["served"] for row in daemon.status()["workers"]["items"])


def tts(daemon, **body):
    return http("POST", daemon.base_url + "/tts", body)


def test_second_identical_request_is_a_hit_served_without_a_worker(start_daemon):
    daemon = start_daemon({"cache": {"enabled": True}}, workers=1)
    base = {"text": "缓存测试：同样的文本第二次应当立即返回。"}
    code, headers, first = tts(daemon, **base)
    assert code == 200 and headers["X-Cache"] == "MISS" and headers["X-Worker"] == "w1"
    before = served(daemon)
    code, headers, second = tts(daemon, **base)
    assert code == 200 and headers["X-Cache"] == "HIT" and "X-Worker" not in headers
    assert second == first and served(daemon) == before
    assert float(headers["X-Audio-Duration"]) > 1 and headers["X-Sample-Rate"] == "24000"
    for change in ({"emotion": "sad"}, {"speed": 1.5}, {"format": "mp3"}):
        code, headers, _ = tts(daemon, **base, **change)
        assert code == 200 and headers["X-Cache"] == "MISS", change
    # Naming the engine's default voice is the same request as naming none.
    code, headers, _ = tts(daemon, **base, voice="baker")
    assert code == 200 and headers["X-Cache"] == "HIT"
    code, _, body = http("GET", daemon.admin_url + "/admin/cache", token=daemon.token)
    stats = json.loads(body)
    assert stats["backend"] == "memory" and stats["hits"] == 2 and stats["misses"] == 4
    code, _, body = http("POST", daemon.admin_url + "/admin/cache/purge", token=daemon.token)
    assert code == 200 and json.loads(body)["deleted"] >= 1
    code, headers, _ = tts(daemon, **base)
    assert headers["X-Cache"] == "MISS"


def synthesis_count(daemon) -> float:
    code, _, body = http("GET", daemon.admin_url + "/metrics", token=daemon.token)
    assert code == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "tts_ops_synthesis_seconds_count":
                return sample.value
    return 0.0


def test_twenty_identical_concurrent_requests_are_synthesized_once(start_daemon):
    daemon = start_daemon({"cache": {"enabled": True}}, workers=2)
    body = {"text": "二十个相同的并发请求只需要合成一次，所有请求都得到同样的结果。", "emotion": "happy"}
    before, syntheses = served(daemon), synthesis_count(daemon)
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: http("POST", daemon.base_url + "/tts", body), range(20)))
    assert all(code == 200 for code, _, _ in results)
    assert len({audio for _, _, audio in results}) == 1
    assert served(daemon) - before == 1
    assert synthesis_count(daemon) - syntheses == 1  # followers share the synthesis, they do not repeat it
    assert daemon.status()["cache"]["single_flight_shared"] >= 1


def test_twenty_identical_concurrent_streamed_requests_are_synthesized_once(start_daemon):
    # /v1/audio/speech always streams: identical streams share one production (one chunk here, so one job).
    daemon = start_daemon({"cache": {"enabled": True}}, workers=2)
    body = {"model": "tts-1", "voice": "alloy", "input": "二十个相同的流式请求只合成一次。", "response_format": "wav"}
    before, syntheses = served(daemon), synthesis_count(daemon)
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: http("POST", daemon.base_url + "/v1/audio/speech", body), range(20)))
    assert [code for code, _, _ in results] == [200] * 20
    # Same audio for all: a request that came after the stream was stored is a HIT whose WAV header carries the
    # real sizes instead of the streamed 0xFFFFFFFF, so the decoded samples are compared, not the bytes.
    decoded = [sf.read(io.BytesIO(audio), dtype="int16") for _, _, audio in results]
    assert all(rate == 24000 for _, rate in decoded) and len(decoded[0][0]) > 24000
    assert all(np.array_equal(samples, decoded[0][0]) for samples, _ in decoded)
    assert served(daemon) - before == 1
    assert synthesis_count(daemon) - syntheses == 1
    status = daemon.status()
    assert status["totals"]["ok"] == status["totals"]["requests"] == 20
    assert status["cache"]["single_flight_in_progress"] == 0


def synthesis_records(daemon) -> dict[str, dict]:
    """synthesis.log records by request id (the daemon writes one line per answered request)."""
    records = {}
    for path in sorted((daemon.workdir / "logs").glob("synthesis.log*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records[record["request_id"]] = record
    return records


def test_redis_outage_under_load_fails_nothing_and_hits_resume(start_daemon):
    redis = RedisServer()
    redis.start()
    try:
        daemon = start_daemon({"cache": {"enabled": True, "redis_url": redis.url, "breaker_reset_s": 1.0}},
                              workers=2)
        with Load(daemon.base_url, clients=4) as load:
            load.wait_for(12)
            assert daemon.status()["cache"]["up"] is True
            # Positive control: before the outage the four sentences are cached, so requests are answered as HITs.
            assert any(sent.cache == "HIT" for sent in load.sent), [sent.cache for sent in load.sent]
            redis.stop()
            daemon.wait_until(lambda: daemon.status()["cache"]["up"] is False, 30, what="cache marked down")
            served_at_down, down_at = served(daemon), time.monotonic()
            load.wait_for_started_after(down_at, 12)
            up_at = time.monotonic()
            served_at_up = served(daemon)
            redis.start()
            daemon.wait_until(lambda: daemon.status()["cache"]["up"] is True, 30, what="cache recovered")
            load.wait_for(len(load.results) + 8)
        assert load.failures() == [], load.failures()[:5]
        during = [sent for sent in load.sent if sent.started >= down_at and sent.finished <= up_at]
        assert len(during) >= 12 - load.clients, len(during)
        # Every request of the outage was synthesized by a worker, none answered from a cache.
        assert {(sent.cache, bool(sent.worker)) for sent in during} == {("MISS", True)}, during
        daemon.wait_until(lambda: {s.request_id for s in during} <= synthesis_records(daemon).keys(), 10,
                          what="synthesis.log lines of the outage requests")
        records = synthesis_records(daemon)
        own = [records[sent.request_id] for sent in during if not records[sent.request_id].get("shared")]
        assert all(record["cache"] == "MISS" and record["worker"] and record["synthesis_s"] > 0 for record in own), own
        assert own and served_at_up - served_at_down >= len(own), (served_at_down, served_at_up, len(own))
        # Redis came back empty: the next request of a sentence is a MISS that refills it, then HITs resume.
        code, headers, _ = tts(daemon, text="今天天气真好，适合出去散步。")
        code, headers, _ = tts(daemon, text="今天天气真好，适合出去散步。")
        assert code == 200 and headers["X-Cache"] == "HIT"
        outage_lines = [line for line in daemon.log().splitlines() if "WARNING" in line and "unavailable" in line]
        assert len(outage_lines) == 1, outage_lines  # one line per outage, not per request
        assert "recovered" in daemon.log()
    finally:
        redis.close()
