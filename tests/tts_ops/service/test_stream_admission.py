"""A stream that has started is admitted work: its later chunks must not be shed when competing requests fill the
wait queue (only its first chunk is subject to load shedding). Real FrontEnd, Balancer and dispatch; stand-in
worker servers on Unix sockets."""

from __future__ import annotations

import asyncio

import pytest

from inference.text.chunking import split_chunks
from tests.fakes.pool import settle
from tests.fakes.standin_workers import Pool, pcm_for, wait_for
from tests.fakes.stream_app import serve_stream
from tts_ops.config import load_config
from tts_ops.http.errors import HttpError
from tts_ops.http.public import FrontEnd
from tts_ops.service.chunk_pipeline import MAX_CHUNKS_AHEAD
from tts_ops.upstream.balancer import Balancer
from tts_vocab import SynthesisJob

MAX_CHUNK_CHARS = 20
TEXT = "".join(f"这是第{n}句话，内容不算太短。" for n in range(1, 49))
JOB = SynthesisJob(text=TEXT, emotion="neutral", speed=1.0, format="pcm")


@pytest.fixture
async def pool():
    pool = Pool()
    yield pool
    await pool.close()


def make_frontend(tmp_path, pool: Pool, queue_limit: int) -> FrontEnd:
    config = load_config(overrides={
        "paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
        "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")},
        "engines": {"fastspeech2_baker": {"max_chunk_chars": MAX_CHUNK_CHARS}}}, env={})
    return FrontEnd(config, pool.sup, Balancer(pool.sup, queue_limit))


async def serve(frontend: FrontEnd):
    return await serve_stream(frontend.service, lambda body: (JOB, False))


async def test_started_stream_is_not_shed_when_the_queue_is_full(tmp_path, pool):
    """Deterministic: chunk 2 holds one worker, the lookahead stalls behind it, a competitor holds the other
    worker and another fills the queue (limit 1). When chunk 2 is answered its worker goes to the queued
    competitor, and the stream starts chunks 10 and 11 with no worker idle and the queue full again: they must
    queue (admitted work), not fail the stream."""
    for n in (1, 2):
        await pool.add(f"w{n}", 100 + n)
        pool.servers[f"w{n}"].delay_s = 0.01
    frontend = make_frontend(tmp_path, pool, queue_limit=1)
    chunks = split_chunks(TEXT, MAX_CHUNK_CHARS)
    assert len(chunks) > MAX_CHUNKS_AHEAD + 4
    pool.gates[chunks[2]] = asyncio.Event()
    pool.gates["占着一个进程"] = asyncio.Event()
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={})
        assert resp.status == 200, await resp.text()
        body = asyncio.create_task(resp.read())
        # Stalled: chunks 0..9 were sent (lookahead of 8 past the two consumed), all but chunk 2 answered.
        await wait_for(lambda: len(pool.texts()) == MAX_CHUNKS_AHEAD + 2 and pool.answered() == MAX_CHUNKS_AHEAD + 1,
                       what="the lookahead to stall behind chunk 2")
        await settle()
        holder = asyncio.create_task(frontend.service.run_job(JOB.replace(text="占着一个进程")))
        await wait_for(lambda: "占着一个进程" in pool.texts(), what="the competitor to hold the idle worker")
        queued = asyncio.create_task(frontend.service.run_job(JOB.replace(text="排队的请求")))
        await settle()
        assert frontend.balancer.queue_depth == 1
        with pytest.raises(HttpError) as shed:  # the queue is full for new work
            await frontend.service.run_job(JOB.replace(text="新来的请求"))
        assert shed.value.status == 503

        pool.gates[chunks[2]].set()
        rest = await asyncio.wait_for(body, 10)
        pool.gates["占着一个进程"].set()
        await asyncio.wait_for(asyncio.gather(holder, queued), 5)
    finally:
        await client.close()
    assert rest == b"".join(pcm_for(chunk) for chunk in chunks)
    assert frontend.totals["shed"] == 1  # only the new request
    assert frontend.balancer.in_flight == 0 and frontend.balancer.queue_depth == 0


async def test_started_stream_survives_sustained_competing_load(tmp_path, pool):
    for n in (1, 2):
        await pool.add(f"w{n}", 100 + n)
        pool.servers[f"w{n}"].delay_s = 0.02
    frontend = make_frontend(tmp_path, pool, queue_limit=1)
    chunks = split_chunks(TEXT, MAX_CHUNK_CHARS)
    assert len(chunks) >= 12
    client = await serve(frontend)
    stop = asyncio.Event()
    competing = {"ok": 0, "shed": 0}

    async def compete(i: int) -> None:
        # Plain /tts-style requests, as many as the server will take: the queue stays full.
        while not stop.is_set():
            try:
                await frontend.service.run_job(JOB.replace(text=f"竞争请求{i}"))
                competing["ok"] += 1
            except HttpError as exc:
                assert exc.status == 503, exc
                competing["shed"] += 1
                await asyncio.sleep(0.001)

    competitors: list[asyncio.Task] = []
    try:
        resp = await client.post("/s", json={})
        assert resp.status == 200, await resp.text()
        first = await resp.content.readany()  # the stream is under way (admitted) ...
        competitors = [asyncio.create_task(compete(i)) for i in range(12)]  # ... now the queue fills up
        rest = await asyncio.wait_for(resp.read(), 30)
    finally:
        stop.set()
        await asyncio.gather(*competitors, return_exceptions=True)
        await client.close()
    assert first + rest == b"".join(pcm_for(chunk) for chunk in chunks)  # every chunk, in order
    assert competing["shed"] > 0 and competing["ok"] > 0  # the queue really was full, and the workers shared
    assert frontend.balancer.in_flight == 0 and frontend.balancer.queue_depth == 0


async def test_first_chunk_of_a_stream_is_still_shed(tmp_path, pool):
    w1 = await pool.add("w1", 101)
    frontend = make_frontend(tmp_path, pool, queue_limit=0)
    w1.begin_request()  # the only worker is busy and nothing may queue
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={})
        assert resp.status == 503 and resp.headers["Retry-After"]
        assert "busy" in (await resp.json())["error"]
    finally:
        await client.close()
        w1.end_request(False)
    assert pool.servers["w1"].received == 0
