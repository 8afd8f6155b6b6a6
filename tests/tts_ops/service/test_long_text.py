"""A long non-streamed text over idle workers (``tts_ops.service.long_text``): its chunks run on workers idle at
that moment and are joined in order; it never takes a worker a queued request waits for. Real FrontEnd, Balancer
and upstream client; stand-in worker servers on Unix sockets."""

from __future__ import annotations

import asyncio

import pytest

from inference.text.chunking import split_chunks
from tests.fakes.pool import settle
from tests.fakes.standin_workers import Pool, pcm_for, wait_for
from tts_ops.config import load_config
from tts_ops.http.public import FrontEnd
from tts_ops.http.ssml import ssml_of
from tts_ops.upstream.balancer import Balancer
from tts_vocab import SynthesisJob

MAX_CHUNK_CHARS = 20
TEXT = "".join(f"这是第{n}句话，内容不算太短。" for n in range(1, 5))
JOB = SynthesisJob(text=TEXT, emotion="neutral", speed=1.0, format="pcm")
QUEUED = "排队的请求"


@pytest.fixture
async def pool():
    pool = Pool()
    for n in (1, 2):
        await pool.add(f"w{n}", 100 + n)
    yield pool
    await pool.close()


def make_frontend(tmp_path, pool: Pool, *, parallel: bool = True) -> FrontEnd:
    config = load_config(overrides={
        "paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
        "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")},
        "server": {"parallel_long_text": parallel},
        "engines": {"fastspeech2_baker": {"max_chunk_chars": MAX_CHUNK_CHARS}}}, env={})
    return FrontEnd(config, pool.sup, Balancer(pool.sup, 8))


def servers_of(pool: Pool, text: str) -> list[str]:
    return [wid for wid, server in pool.servers.items() if text in server.texts]


async def test_long_text_runs_on_both_idle_workers_and_joins_in_order(tmp_path, pool):
    chunks = split_chunks(TEXT, MAX_CHUNK_CHARS)
    assert len(chunks) == 4
    pool.gates[chunks[0]] = asyncio.Event()  # held until both workers have a chunk: they run at the same time
    frontend = make_frontend(tmp_path, pool)
    task = asyncio.create_task(frontend.service.synthesize(JOB))
    await wait_for(lambda: all(server.texts for server in pool.servers.values()), what="a chunk on each worker")
    pool.gates[chunks[0]].set()
    result = await asyncio.wait_for(task, 10)
    assert result.audio == b"".join(pcm_for(chunk) for chunk in chunks)
    assert sorted(result.cached.meta["workers"]) == ["w1", "w2"]
    assert TEXT not in pool.texts()  # never the whole text to one worker
    assert frontend.balancer.in_flight == 0


async def test_a_queued_request_gets_the_worker_before_the_long_text_widens_again(tmp_path, pool):
    chunks = split_chunks(TEXT, MAX_CHUNK_CHARS)
    for chunk in chunks[:2]:
        pool.gates[chunk] = asyncio.Event()
    frontend = make_frontend(tmp_path, pool)
    long_text = asyncio.create_task(frontend.service.synthesize(JOB))
    await wait_for(lambda: chunks[1] in pool.texts(), what="the first two chunks on the two workers")
    queued = asyncio.create_task(frontend.service.run_job(JOB.replace(text=QUEUED)))
    await settle()
    assert frontend.balancer.queue_depth == 1  # both workers hold a chunk of the long text

    pool.gates[chunks[0]].set()  # a worker frees up: it is the queued request's, not the long text's
    await asyncio.wait_for(queued, 5)
    await settle()
    assert chunks[2] not in pool.texts()  # the long text did not widen past the queue ...
    assert servers_of(pool, QUEUED) == servers_of(pool, chunks[0])
    pool.gates[chunks[1]].set()  # ... and carries on when its own chunk is done
    result = await asyncio.wait_for(long_text, 10)
    assert result.audio == b"".join(pcm_for(chunk) for chunk in chunks)
    texts = pool.texts()
    assert all(chunk in texts for chunk in chunks)
    assert frontend.balancer.in_flight == 0 and frontend.balancer.queue_depth == 0


async def test_with_one_idle_worker_the_whole_text_goes_to_it(tmp_path, pool):
    pool.sup.workers["w1"].begin_request()  # busy elsewhere
    frontend = make_frontend(tmp_path, pool)
    result = await asyncio.wait_for(frontend.service.synthesize(JOB), 10)
    assert pool.texts() == [TEXT] and servers_of(pool, TEXT) == ["w2"]
    assert result.audio == pcm_for(TEXT) and "workers" not in result.cached.meta
    pool.sup.workers["w1"].end_request(True)


async def test_turned_off_the_whole_text_goes_to_one_worker(tmp_path, pool):
    frontend = make_frontend(tmp_path, pool, parallel=False)
    await asyncio.wait_for(frontend.service.synthesize(JOB), 10)
    assert pool.texts() == [TEXT]


async def test_an_ssml_document_is_one_job_on_one_worker_whatever_its_length(tmp_path, pool):
    """SSML is a script, not text to split: cut, its markup would reach workers in pieces."""
    document = f'<speak>{TEXT[:30]}<break time="500ms"/>{TEXT[30:]}</speak>'
    job = JOB.replace(text=document, ssml=ssml_of(document))
    assert len(split_chunks(document, MAX_CHUNK_CHARS)) > 1  # control: as plain text it would be cut
    result = await asyncio.wait_for(make_frontend(tmp_path, pool).service.synthesize(job), 10)
    assert pool.texts() == [document] and result.audio == pcm_for(document)
