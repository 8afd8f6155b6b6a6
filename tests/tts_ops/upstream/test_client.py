"""``tts_ops.upstream.client.synthesize`` against stand-in worker servers on Unix sockets: a worker stays reserved
for as long as it synthesises, even when the caller is gone (client disconnect, deadline); admitted work (later
stream chunks) is never shed; the one retry on another worker still behaves."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.pool import settle
from tests.fakes.standin_workers import Pool, pcm_for, wait_for
from tts_ops.upstream import client as dispatch
from tts_ops.upstream.balancer import Balancer, Overloaded
from tts_ops.upstream.client import UpstreamFailed, WorkerRejected, synthesize
from tts_vocab import SynthesisJob

JOB = SynthesisJob(text="你好，世界。", emotion="neutral", speed=1.0, format="pcm")


@pytest.fixture
async def pool():
    pool = Pool()
    yield pool
    await pool.close()


# -- a worker is busy until it answers, whatever happened to the caller ------------------------------------------
async def test_cancelled_caller_keeps_the_worker_reserved_until_it_answers(pool):
    w1 = await pool.add("w1", 101)
    w2 = await pool.add("w2", 102)
    w2.served = 10  # so the first request goes to w1
    balancer = Balancer(pool.sup, queue_limit=4)
    slow = pool.servers["w1"]
    slow.gate = asyncio.Event()

    caller = asyncio.create_task(synthesize(balancer, JOB))
    await asyncio.wait_for(slow.started.wait(), 5)
    caller.cancel()  # client disconnected (aiohttp cancels the handler)
    with pytest.raises(asyncio.CancelledError):
        await caller
    await settle()
    # w1's inference is still running: it must not be handed out again.
    assert w1.in_flight == 1 and balancer.in_flight == 1

    second = await asyncio.wait_for(synthesize(balancer, JOB.replace(text="第二个")), 5)
    assert second.worker_id == "w2" and second.audio == pcm_for("第二个")
    assert w1.in_flight == 1

    slow.gate.set()  # the worker answers the abandoned request
    await wait_for(lambda: w1.in_flight == 0, what="w1 released")
    assert w1.served == 1  # it did finish with a 200
    assert not dispatch._calls  # nothing kept once done


async def test_timed_out_caller_keeps_the_worker_reserved_and_the_next_request_waits(pool):
    w1 = await pool.add("w1", 101)
    balancer = Balancer(pool.sup, queue_limit=4)
    slow = pool.servers["w1"]
    slow.gate = asyncio.Event()

    with pytest.raises(asyncio.TimeoutError):  # SynthesisService.run_job's deadline (-> 504)
        await asyncio.wait_for(synthesize(balancer, JOB), 0.2)
    await settle()
    assert w1.in_flight == 1

    second = asyncio.create_task(synthesize(balancer, JOB.replace(text="第二个")))
    await asyncio.sleep(0.2)
    assert not second.done() and balancer.queue_depth == 1 and slow.received == 1  # queued, not sent to w1

    slow.gate.set()
    result = await asyncio.wait_for(second, 5)
    assert result.worker_id == "w1" and result.audio == pcm_for("第二个")
    assert slow.received == 2 and w1.in_flight == 0 and w1.served == 2


async def test_abandoned_request_that_fails_is_released_as_failed(pool):
    w1 = await pool.add("w1", 101)
    balancer = Balancer(pool.sup, queue_limit=4)
    slow = pool.servers["w1"]
    slow.gate, slow.status = asyncio.Event(), 500
    caller = asyncio.create_task(synthesize(balancer, JOB))
    await asyncio.wait_for(slow.started.wait(), 5)
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    assert w1.in_flight == 1
    slow.gate.set()
    await wait_for(lambda: w1.in_flight == 0, what="w1 released")
    assert w1.served == 0


async def test_worker_call_is_kept_alive_without_its_caller(pool):
    """The loop holds tasks weakly: the orphaned worker call must be referenced until done, or it may be
    garbage-collected mid-request and never release the worker."""
    import gc

    w1 = await pool.add("w1", 101)
    balancer = Balancer(pool.sup, queue_limit=4)
    slow = pool.servers["w1"]
    slow.gate = asyncio.Event()
    caller = asyncio.create_task(synthesize(balancer, JOB))
    await asyncio.wait_for(slow.started.wait(), 5)
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    del caller
    gc.collect()
    slow.gate.set()
    await wait_for(lambda: w1.in_flight == 0, what="w1 released")
    assert w1.served == 1


# -- admitted work is not shed -----------------------------------------------------------------------------------
async def test_admitted_request_waits_at_the_head_instead_of_being_shed(pool):
    w1 = await pool.add("w1", 101)
    balancer = Balancer(pool.sup, queue_limit=1)
    server = pool.servers["w1"]
    server.gate = asyncio.Event()
    first = asyncio.create_task(synthesize(balancer, JOB))
    await asyncio.wait_for(server.started.wait(), 5)
    queued = asyncio.create_task(synthesize(balancer, JOB.replace(text="排队的")))
    await settle()
    assert balancer.queue_depth == 1
    with pytest.raises(Overloaded):  # a new request is shed ...
        await synthesize(balancer, JOB.replace(text="新的"))
    admitted = asyncio.create_task(synthesize(balancer, JOB.replace(text="后续块"), admitted=True))
    await settle()
    assert not admitted.done() and balancer.queue_depth == 2  # ... an admitted one waits, ahead of the queue
    server.gate.set()
    await asyncio.wait_for(asyncio.gather(first, admitted, queued), 5)
    assert server.received == 3
    assert w1.in_flight == 0


# -- the one retry is unchanged ----------------------------------------------------------------------------------
async def test_connection_failure_retries_on_another_worker(pool):
    await pool.add("w1", 101, serve=False)  # its process is gone: connection refused
    w2 = await pool.add("w2", 102)
    w2.served = 10  # w1 is tried first
    balancer = Balancer(pool.sup, queue_limit=4)
    result = await asyncio.wait_for(synthesize(balancer, JOB), 5)
    assert result.worker_id == "w2" and result.attempts == 2 and result.audio == pcm_for(JOB.text)
    assert balancer.in_flight == 0 and pool.sup.workers["w1"].served == 0


async def test_server_error_prefers_another_worker_then_fails(pool):
    await pool.add("w1", 101)
    await pool.add("w2", 102)
    for server in pool.servers.values():
        server.status = 500
    balancer = Balancer(pool.sup, queue_limit=4)
    with pytest.raises(UpstreamFailed, match="answered 500"):
        await asyncio.wait_for(synthesize(balancer, JOB), 5)
    assert [s.received for s in pool.servers.values()] == [1, 1]
    assert balancer.in_flight == 0


async def test_worker_rejection_is_passed_through_and_releases(pool):
    w1 = await pool.add("w1", 101)
    pool.servers["w1"].status = 400
    balancer = Balancer(pool.sup, queue_limit=4)
    with pytest.raises(WorkerRejected) as info:
        await synthesize(balancer, JOB)
    assert info.value.status == 400 and "stand-in error" in str(info.value)
    assert w1.in_flight == 0 and w1.served == 0  # released before the caller saw the error


async def test_worker_without_session_counts_as_a_dead_connection(pool):
    w1 = await pool.add("w1", 101)
    await w1.session.close()
    w1.session = None
    balancer = Balancer(pool.sup, queue_limit=4)
    balancer.pick = lambda avoid=(), dead=(): None if ("w1", 101) in set(dead) else w1  # force picking it
    with pytest.raises(UpstreamFailed, match="no connection"):
        await asyncio.wait_for(synthesize(balancer, JOB, attempts=1), 5)
    assert w1.in_flight == 0
