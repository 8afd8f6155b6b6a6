"""A retry after a broken connection fails fast (NoCapacity -> 503 + Retry-After) when no other process is READY
or STARTING, at once or as soon as its last candidate leaves while it is queued; plain requests and the queue's
order are not affected. Balancer against the stand-in supervisor, and the client against stand-in servers."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.pool import FakeSupervisor, settle
from tests.fakes.standin_workers import Pool
from tts_ops.supervisor.states import WorkerState
from tts_ops.upstream.balancer import Balancer, NoCapacity
from tts_ops.upstream.client import synthesize
from tts_vocab import SynthesisJob

S = WorkerState
JOB = SynthesisJob(text="你好，世界。", emotion="neutral", speed=1.0, format="pcm")
DEAD_W1 = [("w1", 101)]


@pytest.fixture
def sup() -> FakeSupervisor:
    return FakeSupervisor()


def retry(balancer: Balancer, dead=DEAD_W1) -> asyncio.Task:
    return asyncio.create_task(balancer.acquire(dead=dead, retry=True))


async def fails_fast(task: asyncio.Task) -> None:
    with pytest.raises(NoCapacity, match="no other worker"):
        await asyncio.wait_for(task, 1)


# -- at once ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", [S.READY, S.EXITED, S.BACKOFF])
async def test_only_worker_dead_for_the_retry_fails_at_once(sup, state):
    """The worker's process broke the connection; whether or not the supervisor has seen the exit yet, no other
    process is coming within the request."""
    sup.add("w1", 101, state=state)
    balancer = make(sup)
    await fails_fast(retry(balancer))
    assert balancer.queue_depth == 0


@pytest.mark.parametrize("state", [S.DRAINING, S.STOPPING, S.EXITED, S.BACKOFF, S.FAILED])
async def test_other_worker_that_will_not_serve_soon_is_no_candidate(sup, state):
    sup.add("w1", 101)
    sup.add("w2", 102, state=state)
    await fails_fast(retry(make(sup)))


async def test_every_other_worker_dead_for_the_request_fails_at_once(sup):
    sup.add("w1", 101)
    sup.add("w2", 102)
    await fails_fast(retry(make(sup), dead=[("w1", 101), ("w2", 102)]))


@pytest.mark.parametrize("state", [S.STARTING, S.READY])
async def test_busy_or_booting_other_worker_is_waited_for(sup, state):
    """Positive control for the above: a candidate exists, so the retry queues and gets it."""
    sup.add("w1", 101)
    w2 = sup.add("w2", 102, state=state)
    w2.in_flight = 1  # busy (READY) or not routable yet (STARTING)
    balancer = make(sup)
    task = retry(balancer)
    await settle()
    assert not task.done() and balancer.queue_depth == 1
    w2.in_flight = 0
    w2.set_state(S.READY)
    assert await asyncio.wait_for(task, 1) is w2


async def test_successor_with_the_same_id_is_a_candidate_by_generation(sup):
    """Worker ids may be stable slots: the dead process's successor keeps the id, only its generation differs."""
    w1 = sup.add("w1", 201, state=S.STARTING)
    balancer = make(sup)
    task = retry(balancer)
    await settle()
    assert not task.done()
    w1.set_state(S.READY)
    assert await asyncio.wait_for(task, 1) is w1


async def test_plain_request_still_waits_for_a_restart(sup):
    """Only a retry fails fast: a first attempt may wait for the worker's restart (BACKOFF, then STARTING)."""
    w1 = sup.add("w1", 101, state=S.BACKOFF)
    balancer = make(sup)
    task = asyncio.create_task(balancer.acquire())
    await settle()
    assert not task.done() and balancer.queue_depth == 1
    w1.set_state(S.STARTING, pid=201)
    w1.set_state(S.READY)
    assert await asyncio.wait_for(task, 1) is w1


# -- while queued -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exit_to", [S.BACKOFF, S.FAILED, S.RETIRED])
async def test_queued_retry_fails_when_its_booting_candidate_exits(sup, exit_to):
    sup.add("w1", 101, state=S.BACKOFF)
    w2 = sup.add("w2", 102, state=S.STARTING)
    balancer = make(sup)
    task = retry(balancer)
    await settle()
    assert not task.done()
    w2.set_state(S.EXITED)
    w2.set_state(exit_to)
    await fails_fast(task)
    assert balancer.queue_depth == 0


async def test_queued_retry_fails_when_its_busy_candidate_crashes(sup):
    sup.add("w1", 101, state=S.EXITED)
    w2 = sup.add("w2", 102)
    w2.in_flight = 1
    balancer = make(sup)
    task = retry(balancer)
    await settle()
    assert not task.done()
    w2.set_state(S.EXITED)
    await fails_fast(task)


async def test_queued_retry_fails_when_its_candidate_is_removed_from_the_pool(sup):
    """The supervisor drops a RETIRED (or lost) handle from ``workers`` before telling its listeners."""
    sup.add("w1", 101, state=S.BACKOFF)  # restarting later: the pool as a whole can still become ready
    w2 = sup.add("w2", 102, state=S.STARTING)
    balancer = make(sup)
    task = retry(balancer)
    await settle()
    sup.add("w3", 103, state=S.STARTING)
    del sup.workers["w2"]
    w2.set_state(S.RETIRED)
    await settle()
    assert not task.done()  # w3 is still booting: positive control
    w3 = sup.workers.pop("w3")
    w3.set_state(S.RETIRED)
    await fails_fast(task)


async def test_failing_retry_leaves_the_queue_in_order(sup):
    w1 = sup.add("w1", 101)
    w2 = sup.add("w2", 102, state=S.STARTING)
    balancer = make(sup)
    assert await balancer.acquire() is w1
    first = asyncio.create_task(balancer.acquire(), name="first")
    await settle()
    second = asyncio.create_task(balancer.acquire(), name="second")
    await settle()
    picky = retry(balancer)  # at the head of the queue
    await settle()
    assert balancer.queue_depth == 3
    w2.set_state(S.EXITED)
    await fails_fast(picky)
    await settle()
    assert not first.done() and not second.done() and balancer.queue_depth == 2  # not woken for nothing
    balancer.release(w1, True)
    assert await asyncio.wait_for(first, 1) is w1
    await settle()
    assert not second.done()
    balancer.release(w1, True)
    assert await asyncio.wait_for(second, 1) is w1


# -- through the client -------------------------------------------------------------------------------------------
async def test_connection_failure_on_the_only_worker_is_no_capacity():
    pool = Pool()
    try:
        await pool.add("w1", 101, serve=False)  # its process is gone: connection refused
        balancer = Balancer(pool.sup, queue_limit=4)
        with pytest.raises(NoCapacity, match="no other worker"):
            await asyncio.wait_for(synthesize(balancer, JOB), 5)
        assert balancer.in_flight == 0 and balancer.queue_depth == 0
    finally:
        await pool.close()


def make(sup: FakeSupervisor, queue_limit: int = 8) -> Balancer:
    return Balancer(sup, queue_limit)
