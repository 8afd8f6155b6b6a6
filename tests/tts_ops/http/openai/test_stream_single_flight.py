"""Identical streams share one synthesis (over aiohttp's test server, the real synthesis service with the stand-in
worker call of test_streaming, and the real in-process ResultCache): concurrent readers get identical bodies from
one production; a reader whose client leaves, the first one included, does not cut the others off; errors reach
every reader; and an aborted stream is logged and counted with its real outcome (499 or the failure's status), not
the 200 it started with."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tts_ops.cache import ResultCache
from tts_ops.config import CacheConfig
from tts_ops.http.errors import HttpError
from tts_ops.http.middleware import METRICS, json_error, request_context
from tts_ops.http.streaming import stream_job
from tts_ops.observability.metrics import Metrics
from tts_vocab import SynthesisJob

from .test_streaming import SENTENCES, TEXT, expected_pcm, make_config, stand_in, synthesis_lines, until

JOB = SynthesisJob(text=TEXT, emotion="neutral", speed=1.0, format="pcm")


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


@pytest.fixture
async def cache():
    c = ResultCache.from_config(CacheConfig(enabled=True, prefix="test:"))
    await c.start()
    yield c
    await c.close()


async def serve(service) -> tuple[TestClient, Metrics]:
    """POST /s streams JOB, with the real middleware and a real Metrics, as the public app has them."""
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await stream_job(service, request, JOB)
        except HttpError as exc:
            return json_error(exc.status, str(exc), exc.headers)

    metrics = Metrics()
    app = web.Application(middlewares=[request_context])
    app[METRICS] = metrics
    app.router.add_post("/s", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, metrics


def shared(caplog) -> list[bool]:
    """Per synthesis.log line: whether it was another request's synthesis (single flight)."""
    return [bool(entry.get("shared")) for entry in synthesis_lines(caplog)]


def requests_total(metrics: Metrics, status: int) -> float:
    return metrics.registry.get_sample_value("tts_ops_requests_total", {"endpoint": "/s", "status": str(status)}) or 0


def access_statuses(caplog) -> list[int]:
    return [r.status for r in caplog.records if r.name == "tts_ops.access"]


def open_connections(client: TestClient) -> int:
    return len(client.server.runner.server.connections)


async def test_twenty_identical_streams_share_one_synthesis(config, cache, caplog):
    caplog.set_level(logging.INFO, logger="tts_ops.synthesis")
    service, worker = stand_in(config, workers=2, cache=cache, delays={i: 0.05 for i in range(8)})
    client, _ = await serve(service)
    try:
        async def one() -> bytes:
            resp = await client.post("/s")
            assert resp.status == 200 and resp.headers["X-Cache"] == "MISS"
            return await resp.read()

        bodies = await asyncio.gather(*[one() for _ in range(20)])
    finally:
        await client.close()
    assert all(np.array_equal(np.frombuffer(body, "<i2"), expected_pcm()) for body in bodies)
    assert len(worker.calls) == len(SENTENCES)  # one production, not twenty
    assert sorted(shared(caplog)) == [False] + [True] * 19  # one synthesis accounted for
    stats = cache.stats()
    assert stats["single_flight_shared"] == 19 and stats["stores"] == 1 and stats["single_flight_in_progress"] == 0


async def test_first_client_gone_mid_stream_does_not_cut_off_the_follower(config, cache, caplog):
    caplog.set_level(logging.INFO, logger="tts_ops")
    gate = asyncio.Event()  # chunk 3 is held until both clients are in and the first one has left
    service, worker = stand_in(config, workers=2, cache=cache, gates={3: gate})
    client, metrics = await serve(service)
    try:
        first = await client.post("/s")
        assert first.status == 200 and await first.content.readany()
        follower = await client.post("/s")
        start = await follower.content.readany()  # replayed from what was produced
        assert follower.status == 200 and start
        first.close()
        await until(lambda: open_connections(client) == 1, what="the server to see the first client go")
        gate.set()
        body = start + await follower.read()
        await until(lambda: 499 in access_statuses(caplog), what="the first request's access line")
    finally:
        await client.close()
    assert np.array_equal(np.frombuffer(body, "<i2"), expected_pcm())
    assert len(worker.calls) == len(SENTENCES) and worker.cancelled == 0
    assert shared(caplog) == [False]  # the follower finished, so it accounts for the synthesis
    assert sorted(access_statuses(caplog)) == [200, 499]
    assert requests_total(metrics, 499) == 1 and requests_total(metrics, 200) == 1
    assert (await cache.get(service.cache_key(JOB))).data == body  # stored as usual


async def test_error_mid_stream_aborts_every_reader_and_is_counted_as_the_error(config, cache, caplog):
    caplog.set_level(logging.INFO, logger="tts_ops")
    gate = asyncio.Event()
    service, worker = stand_in(config, workers=2, cache=cache, gates={2: gate}, fail_at=5)  # chunk 5: 503 mid-stream
    client, metrics = await serve(service)
    try:
        responses = [await client.post("/s") for _ in range(2)]
        assert [r.status for r in responses] == [200, 200]
        gate.set()
        for resp in responses:
            with pytest.raises(aiohttp.ClientPayloadError):  # truncated: never a silently short file
                await resp.read()
        await until(lambda: len(access_statuses(caplog)) == 2, what="both access lines")
    finally:
        await client.close()
    assert [c.text for c in worker.calls].count(SENTENCES[5]) == 1
    assert access_statuses(caplog) == [503, 503]
    assert requests_total(metrics, 503) == 2 and requests_total(metrics, 200) == 0
    assert synthesis_lines(caplog) == [] and await cache.get(service.cache_key(JOB)) is None
    assert cache.stats()["single_flight_in_progress"] == 0


async def test_error_before_the_first_byte_is_a_normal_error_for_every_reader(config, cache):
    gate = asyncio.Event()
    service, worker = stand_in(config, cache=cache, gates={0: gate}, fail_at=0)
    client, _ = await serve(service)
    try:
        pending = [asyncio.create_task(client.post("/s")) for _ in range(3)]
        await until(lambda: cache.stats()["single_flight_shared"] == 2, what="the followers to join")
        gate.set()
        responses = await asyncio.gather(*pending)
        assert [r.status for r in responses] == [503] * 3
        for resp in responses:
            assert (await resp.json())["error"] == "server is busy" and resp.headers["Retry-After"] == "2"
    finally:
        await client.close()
    assert len(worker.calls) == 1


async def test_every_client_gone_cancels_the_shared_production(config, cache, caplog):
    caplog.set_level(logging.INFO, logger="tts_ops")
    gate = asyncio.Event()
    # Chunk 6 never finishes: without it the chunks done ahead while 3 was held could complete the production.
    held = asyncio.Event()
    service, worker = stand_in(config, workers=2, cache=cache, gates={3: gate, 6: held})
    client, _ = await serve(service)
    try:
        responses = [await client.post("/s") for _ in range(2)]
        for resp in responses:
            await resp.content.readany()
            resp.close()
        await until(lambda: open_connections(client) == 0, what="the server to see both clients go")
        gate.set()  # the next piece is written to nobody: both readers leave, the production is cancelled
        await until(lambda: "stream cancelled" in caplog.text and worker.running == 0, what="the cancellation")
        await until(lambda: len(access_statuses(caplog)) == 2, what="both access lines")
        calls = len(worker.calls)
        assert cache.stats()["single_flight_in_progress"] == 0
        # A new identical request starts a fresh production instead of joining the dead one.
        held.set()
        fresh = await client.post("/s")
        assert np.array_equal(np.frombuffer(await fresh.read(), "<i2"), expected_pcm())
    finally:
        await client.close()
    assert calls < len(SENTENCES) and worker.cancelled >= 1 and access_statuses(caplog) == [499, 499, 200]
