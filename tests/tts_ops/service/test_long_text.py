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
from tts_ops.service import long_text
from tts_ops.service.errors import ServiceError
from tts_ops.upstream.balancer import Balancer
from tts_vocab import SynthesisJob

MAX_CHUNK_CHARS = 20
TEXT = "".join(f"这是第{n}句话，内容不算太短。" for n in range(1, 5))
JOB = SynthesisJob(text=TEXT, emotion="neutral", speed=1.0, format="pcm")
QUEUED = "排队的请求"
# Chunks of unequal length (10, 20, 11 and 17 characters at MAX_CHUNK_CHARS): longest first is 1, 3, 2, 0.
UNEVEN = ["你好，今天天气不错。", "这是一句相当长的句子，差不多有二十个字。", "明天我们一起去公园吧。",
          "这句话也很长，有十七八个字左右吧。"]


@pytest.fixture
async def pool():
    pool = Pool()
    for n in (1, 2):
        await pool.add(f"w{n}", 100 + n)
    yield pool
    await pool.close()


def make_frontend(tmp_path, pool: Pool, *, parallel: bool = True, queue_limit: int = 8) -> FrontEnd:
    config = load_config(overrides={
        "paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
        "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")},
        "server": {"parallel_long_text": parallel},
        "engines": {"fastspeech2_baker": {"max_chunk_chars": MAX_CHUNK_CHARS}}}, env={})
    return FrontEnd(config, pool.sup, Balancer(pool.sup, queue_limit))


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


def test_longest_first_orders_by_spoken_characters_and_keeps_text_order_among_equals():
    assert long_text.longest_first(UNEVEN) == [1, 3, 2, 0]
    assert long_text.longest_first(["一二三。", "四五六！", "七八"]) == [0, 1, 2]
    # Punctuation and spaces are next to free to synthesize: they do not make a chunk "longer".
    assert long_text.spoken_weight("好，好。……  ") == 2 and long_text.spoken_weight("iPhone 15") == 8


async def test_the_longest_chunks_start_first_and_the_audio_is_joined_in_text_order(tmp_path, pool):
    text = "".join(UNEVEN)
    assert split_chunks(text, MAX_CHUNK_CHARS) == UNEVEN  # control: the split the pipeline gets
    for chunk in UNEVEN:
        pool.gates[chunk] = asyncio.Event()
    frontend = make_frontend(tmp_path, pool)
    task = asyncio.create_task(frontend.service.synthesize(JOB.replace(text=text)))
    await wait_for(lambda: len(pool.texts()) == 2, what="a chunk on each worker")
    await settle()
    assert sorted(pool.texts()) == sorted([UNEVEN[1], UNEVEN[3]])  # the two longest, not the first two
    pool.gates[UNEVEN[3]].set()  # its worker frees up first: the next longest goes there, the shortest waits
    await wait_for(lambda: UNEVEN[2] in pool.texts(), what="the third longest chunk")
    assert servers_of(pool, UNEVEN[2]) == servers_of(pool, UNEVEN[3]) and UNEVEN[0] not in pool.texts()
    for gate in pool.gates.values():
        gate.set()
    result = await asyncio.wait_for(task, 10)
    assert result.audio == b"".join(pcm_for(chunk) for chunk in UNEVEN)
    assert sorted(result.cached.meta["workers"]) == ["w1", "w2"]
    assert frontend.balancer.in_flight == 0


async def test_a_first_chunk_shed_before_any_other_started_is_the_answer(tmp_path, pool):
    """No worker could be reserved and the queue is full: the longest chunk, sent first through the queue, is shed;
    the request gets that 503 (the text-order head never started, so there is nothing else to wait for)."""
    for worker in pool.sup.workers.values():
        worker.begin_request()  # both busy elsewhere
    frontend = make_frontend(tmp_path, pool, queue_limit=0)
    with pytest.raises(ServiceError) as raised:
        await asyncio.wait_for(long_text.synthesize_parallel(frontend.service, frontend.balancer, JOB, UNEVEN,
                                                             0.25, 2), 5)
    assert raised.value.status == 503
    assert pool.texts() == []
    for worker in pool.sup.workers.values():
        worker.end_request(True)
