"""The Balancer against a stand-in supervisor: least-outstanding picks, the bounded FIFO queue, cancellation,
dead/avoided workers, retries at the head of the queue, and failing fast when nothing can serve."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.pool import FakeSupervisor, settle
from tts_ops.supervisor.states import WorkerState
from tts_ops.upstream.balancer import Balancer, NoCapacity, Overloaded

S = WorkerState


@pytest.fixture
def sup() -> FakeSupervisor:
    return FakeSupervisor()


def make(sup: FakeSupervisor, queue_limit: int = 8) -> Balancer:
    return Balancer(sup, queue_limit)


def picked(balancer: Balancer, **kwargs) -> str | None:
    """The id of the worker ``pick`` chooses (None: none)."""
    worker = balancer.pick(**kwargs)
    return worker.id if worker is not None else None


def queue(balancer: Balancer, n: int, **kwargs) -> list[asyncio.Task]:
    return [asyncio.create_task(balancer.acquire(**kwargs), name=f"waiter-{i}") for i in range(n)]


# -- picking ------------------------------------------------------------------------------------------------------
async def test_registers_as_listener(sup):
    balancer = make(sup)
    assert sup.listeners == [balancer._on_change]


async def test_picks_the_idle_worker_that_served_least(sup):
    sup.add("w1", 101, served=5)
    sup.add("w2", 102, served=2)
    sup.add("w3", 103, served=9)
    balancer = make(sup)
    assert (await balancer.acquire()).id == "w2"
    assert (await balancer.acquire()).id == "w1"  # w2 is busy now
    assert (await balancer.acquire()).id == "w3"
    assert balancer.in_flight == 3


async def test_served_counts_since_the_current_process_started(sup):
    old = sup.add("w1", 101, served=100)
    old.served_at_start = 99  # restarted: served 1 since
    sup.add("w2", 102, served=10)
    assert picked(make(sup)) == "w1"


@pytest.mark.parametrize("state", [S.STARTING, S.DRAINING, S.STOPPING, S.EXITED, S.BACKOFF, S.FAILED])
async def test_only_ready_workers_are_picked(sup, state):
    sup.add("w1", 101, state=state)
    assert make(sup).pick() is None


async def test_worker_without_session_is_not_picked(sup):
    sup.add("w1", 101).session = None
    sup.add("w2", 102, served=50)
    assert picked(make(sup)) == "w2"


async def test_busy_worker_is_not_picked(sup):
    sup.add("w1", 101).in_flight = 1
    assert make(sup).pick() is None


async def test_avoid_is_only_a_preference(sup):
    sup.add("w1", 101, served=0)
    sup.add("w2", 102, served=10)
    balancer = make(sup)
    assert picked(balancer, avoid=["w1"]) == "w2"
    sup.workers["w2"].in_flight = 1
    assert picked(balancer, avoid=["w1"]) == "w1"  # nothing else idle: the avoided one still serves


async def test_dead_worker_process_is_never_picked_but_its_restart_is(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup)
    assert balancer.pick(dead=[("w1", 101)]) is None
    w1.pid = 201  # same id, new process
    assert balancer.pick(dead=[("w1", 101)]) is w1


async def test_dead_and_avoid_together(sup):
    sup.add("w1", 101)
    sup.add("w2", 102)
    balancer = make(sup)
    # w2 is avoided and w1's process is dead: the avoided one is still better than nothing.
    assert picked(balancer, avoid=["w2"], dead=[("w1", 101)]) == "w2"


async def test_retry_waits_for_a_restart_already_booting(sup):
    w1 = sup.add("w1", 101, state=S.STARTING)  # the dead process's successor (same id, new generation)
    w1.pid = 201
    balancer = make(sup)
    task = asyncio.create_task(balancer.acquire(dead=[("w1", 101)], retry=True))
    await settle()
    assert not task.done() and balancer.queue_depth == 1
    w1.set_state(S.READY)
    assert await asyncio.wait_for(task, 1) is w1 and w1.in_flight == 1


# -- suspects (failed health probes) ------------------------------------------------------------------------------
async def test_worker_with_failed_probes_is_skipped_while_a_healthy_one_is_idle(sup):
    sup.add("w1", 101, served=0).probe_failures = 1  # would win on "served least"
    sup.add("w2", 102, served=50)
    assert picked(make(sup)) == "w2"


async def test_suspect_is_skipped_even_when_the_healthy_worker_is_busy(sup):
    """A SIGSTOPped worker keeps READY until declared hung: a request sent there would hang until the kill."""
    sup.add("w1", 101).probe_failures = 2
    w2 = sup.add("w2", 102)
    balancer = make(sup)
    assert await balancer.acquire() is w2
    waiter = asyncio.create_task(balancer.acquire())
    await settle()
    assert not waiter.done() and balancer.queue_depth == 1  # waits for w2 rather than going to w1
    balancer.release(w2, True)
    assert await asyncio.wait_for(waiter, 1) is w2


async def test_suspects_serve_when_no_healthy_worker_is_ready(sup):
    sup.add("w1", 101, served=9).probe_failures = 1
    sup.add("w2", 102, served=3).probe_failures = 3
    sup.add("w3", 103, state=S.STARTING)
    balancer = make(sup)
    assert picked(balancer) == "w2"  # a lost probe must not stop all service: least served among suspects
    assert picked(balancer, avoid=["w2"]) == "w1"


async def test_suspect_that_answers_again_wakes_the_queue(sup):
    w1 = sup.add("w1", 101)
    w1.probe_failures = 1
    w2 = sup.add("w2", 102)
    balancer = make(sup)
    assert await balancer.acquire() is w2
    waiter = asyncio.create_task(balancer.acquire())
    await settle()
    assert not waiter.done()
    w1.probe_failures = 0
    sup.changed(w1)  # what WorkerHandle.probe does on recovery
    assert await asyncio.wait_for(waiter, 1) is w1


# -- queueing -----------------------------------------------------------------------------------------------------
async def test_queue_is_fifo(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup)
    assert await balancer.acquire() is w1
    order: list[int] = []

    async def client(i: int) -> None:
        worker = await balancer.acquire()
        order.append(i)
        await asyncio.sleep(0)
        balancer.release(worker, True)

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(client(i)))
        await settle()  # admitted in this order
    assert balancer.queue_depth == 5
    balancer.release(w1, True)
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert order == [0, 1, 2, 3, 4]
    assert balancer.queue_depth == 0 and w1.in_flight == 0 and w1.served == 6


async def test_new_request_does_not_overtake_a_woken_waiter(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup)
    await balancer.acquire()
    first = asyncio.create_task(balancer.acquire())
    await settle()
    balancer.release(w1, True)  # wakes `first`, which has not run yet
    late = asyncio.create_task(balancer.acquire())
    assert await asyncio.wait_for(first, 1) is w1
    await settle()
    assert not late.done() and balancer.queue_depth == 1
    balancer.release(w1, True)
    assert await asyncio.wait_for(late, 1) is w1


async def test_queue_limit_sheds_immediately(sup):
    sup.add("w1", 101)
    balancer = make(sup, queue_limit=2)
    await balancer.acquire()
    waiters = queue(balancer, 2)
    await settle()
    assert balancer.queue_depth == 2
    with pytest.raises(Overloaded, match="2 requests already queued"):
        await asyncio.wait_for(balancer.acquire(), 0.5)  # raises at once, never waits
    assert balancer.queue_depth == 2
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert balancer.queue_depth == 0


async def test_applied_queue_limit_decides_the_next_admission(sup):
    sup.add("w1", 101)
    balancer = make(sup, queue_limit=1)
    await balancer.acquire()
    [waiter] = queue(balancer, 1)
    await settle()
    with pytest.raises(Overloaded, match="1 requests already queued"):
        await asyncio.wait_for(balancer.acquire(), 0.5)
    balancer.apply(3)  # a reload raised it: the next request queues (positive control for the shed above)
    second = asyncio.create_task(balancer.acquire())
    await settle()
    assert balancer.queue_depth == 2 and not second.done()
    balancer.apply(1)  # lowered below the queue: who waits keeps waiting, the next one is shed
    with pytest.raises(Overloaded, match="1 requests already queued"):
        await asyncio.wait_for(balancer.acquire(), 0.5)
    assert balancer.queue_depth == 2
    for task in (waiter, second):
        task.cancel()
    await asyncio.gather(waiter, second, return_exceptions=True)


async def test_queue_limit_zero_sheds_when_no_worker_is_idle(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup, queue_limit=0)
    assert await balancer.acquire() is w1
    with pytest.raises(Overloaded):
        await balancer.acquire()


async def test_cancelled_waiter_leaves_the_queue(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup)
    await balancer.acquire()
    a, b = queue(balancer, 2)
    await settle()
    a.cancel()
    await settle()
    assert a.cancelled() and balancer.queue_depth == 1
    balancer.release(w1, True)
    assert await asyncio.wait_for(b, 1) is w1


async def test_cancelled_waiter_passes_its_wake_up_on(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup)
    await balancer.acquire()
    a, b = queue(balancer, 2)
    await settle()
    balancer.release(w1, True)  # wakes a ...
    a.cancel()                  # ... whose client goes away before it runs
    await settle()
    assert a.cancelled()
    assert await asyncio.wait_for(b, 1) is w1  # b got the wake-up, not a lost signal
    assert balancer.queue_depth == 0 and w1.in_flight == 1


async def test_timed_out_waiter_passes_its_wake_up_on(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup)
    await balancer.acquire()
    a = asyncio.create_task(asyncio.wait_for(balancer.acquire(), 0.05))
    await settle()
    b = asyncio.create_task(balancer.acquire())
    with pytest.raises(asyncio.TimeoutError):
        await a
    balancer.release(w1, True)
    assert await asyncio.wait_for(b, 1) is w1


async def test_retry_goes_to_the_head_of_the_queue(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup, queue_limit=1)
    await balancer.acquire()
    normal = asyncio.create_task(balancer.acquire())
    await settle()
    retry = asyncio.create_task(balancer.acquire(avoid=["w9"], retry=True))  # admitted even though queue is full
    await settle()
    assert balancer.queue_depth == 2
    balancer.release(w1, True)
    assert await asyncio.wait_for(retry, 1) is w1
    await settle()
    assert not normal.done()
    balancer.release(w1, True)
    assert await asyncio.wait_for(normal, 1) is w1


async def test_retry_takes_an_idle_worker_even_with_waiters_queued(sup):
    w1 = sup.add("w1", 101)
    w2 = sup.add("w2", 102)
    balancer = make(sup)
    await balancer.acquire()
    await balancer.acquire()
    waiter = asyncio.create_task(balancer.acquire())
    await settle()
    w2.in_flight = 0  # freed without a notification yet
    assert await balancer.acquire(retry=True) is w2
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert w1.in_flight == 1


async def test_woken_waiter_that_cannot_use_the_worker_waits_again_at_the_head(sup):
    w1 = sup.add("w1", 101)
    sup.add("w2", 102, state=S.STARTING)  # a candidate: the retry waits
    balancer = make(sup)
    await balancer.acquire()
    picky = asyncio.create_task(balancer.acquire(dead=[("w1", 101)], retry=True))
    await settle()
    balancer.release(w1, True)
    await settle()
    assert not picky.done() and balancer.queue_depth == 1
    w1.set_state(S.STOPPING)
    w1.set_state(S.EXITED)
    w1.set_state(S.BACKOFF)
    w1.set_state(S.STARTING, pid=202)
    w1.set_state(S.READY)
    assert await asyncio.wait_for(picky, 1) is w1


async def test_wake_up_refused_by_a_picky_waiter_reaches_the_next_one(sup):
    """A retry that must not use w1's old process is woken when w1 frees up; the plain request queued behind it
    can use w1 and must get it (not wait for some unrelated later event)."""
    w1 = sup.add("w1", 101)
    sup.add("w2", 102, state=S.STARTING)
    balancer = make(sup)
    await balancer.acquire()
    normal = asyncio.create_task(balancer.acquire())
    await settle()
    picky = asyncio.create_task(balancer.acquire(dead=[("w1", 101)], retry=True))
    await settle()
    balancer.release(w1, True)
    assert await asyncio.wait_for(normal, 1) is w1
    assert not picky.done()
    picky.cancel()
    await asyncio.gather(picky, return_exceptions=True)


# -- failing fast -------------------------------------------------------------------------------------------------
async def test_no_capacity_immediately_when_nothing_can_become_ready(sup):
    sup.add("w1", 101, state=S.FAILED)
    balancer = make(sup)
    with pytest.raises(NoCapacity, match="all workers failed"):
        await asyncio.wait_for(balancer.acquire(), 0.5)
    assert balancer.queue_depth == 0


async def test_no_workers_at_all_is_no_capacity(sup):
    with pytest.raises(NoCapacity):
        await make(sup).acquire()


async def test_starting_worker_is_worth_waiting_for(sup):
    w1 = sup.add("w1", 101, state=S.STARTING)
    balancer = make(sup)
    task = asyncio.create_task(balancer.acquire())
    await settle()
    assert balancer.queue_depth == 1
    w1.set_state(S.READY)
    assert await asyncio.wait_for(task, 1) is w1


async def test_all_failed_fails_queued_waiters(sup):
    w1 = sup.add("w1", 101)
    w2 = sup.add("w2", 102)
    balancer = make(sup)
    await balancer.acquire()
    await balancer.acquire()
    waiters = queue(balancer, 3)
    await settle()
    assert balancer.queue_depth == 3
    for worker in (w1, w2):
        worker.set_state(S.EXITED)
        await settle()
    assert not any(t.done() for t in waiters)  # they might still come back
    w1.set_state(S.FAILED)
    await settle()
    assert not any(t.done() for t in waiters)
    w2.set_state(S.FAILED)  # now nothing can become ready
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 1)
    assert all(isinstance(r, NoCapacity) for r in results), results
    assert balancer.queue_depth == 0


async def test_close_fails_waiters_and_later_requests(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup)
    await balancer.acquire()
    waiters = queue(balancer, 2)
    await settle()
    balancer.close()
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 1)
    assert all(isinstance(r, NoCapacity) and "shutting down" in str(r) for r in results), results
    assert balancer.queue_depth == 0
    balancer.release(w1, True)
    with pytest.raises(NoCapacity, match="shutting down"):
        await balancer.acquire()
    assert w1.in_flight == 0


async def test_release_counts_success_only(sup):
    w1 = sup.add("w1", 101)
    balancer = make(sup)
    balancer.release(await balancer.acquire(), False)
    balancer.release(await balancer.acquire(), True)
    assert (w1.in_flight, w1.served) == (0, 1)


async def test_many_clients_two_workers_never_double_book(sup):
    workers = [sup.add("w1", 101), sup.add("w2", 102)]
    balancer = make(sup, queue_limit=100)
    peak = {w.id: 0 for w in workers}

    async def client() -> None:
        worker = await balancer.acquire()
        peak[worker.id] = max(peak[worker.id], worker.in_flight)
        await asyncio.sleep(0.001)
        balancer.release(worker, True)

    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(50))), 5)
    assert peak == {"w1": 1, "w2": 1}
    assert sum(w.served for w in workers) == 50 and balancer.queue_depth == 0
    assert abs(workers[0].served - workers[1].served) <= 10


async def test_new_request_is_not_stuck_behind_a_waiter_that_refuses_the_idle_worker(sup):
    """A worker whose connection broke for a retry while its process lives on: the retry waits for another one
    (w2 is booting), but plain requests arriving meanwhile must still be served by the idle worker."""
    w1 = sup.add("w1", 101)
    sup.add("w2", 102, state=S.STARTING)
    balancer = make(sup)
    picky = asyncio.create_task(balancer.acquire(dead=[("w1", 101)], retry=True))
    await settle()
    assert not picky.done() and balancer.queue_depth == 1
    assert await asyncio.wait_for(balancer.acquire(), 1) is w1
    queued = asyncio.create_task(balancer.acquire())
    await settle()
    balancer.release(w1, True)
    assert await asyncio.wait_for(queued, 1) is w1
    balancer.release(w1, True)
    await settle()
    assert not picky.done() and balancer.queue_depth == 1
    picky.cancel()
    await asyncio.gather(picky, return_exceptions=True)
    assert balancer.queue_depth == 0


async def test_two_waiters_refusing_the_idle_worker_do_not_spin(sup, monkeypatch):
    w1 = sup.add("w1", 101)
    sup.add("w2", 102, state=S.STARTING)
    balancer = make(sup)
    await balancer.acquire()
    pickies = queue(balancer, 2, dead=[("w1", 101)], retry=True)
    await settle()
    wakes = 0
    original = balancer._wake_next

    def counting(*args, **kwargs) -> None:
        nonlocal wakes
        wakes += 1
        original(*args, **kwargs)

    monkeypatch.setattr(balancer, "_wake_next", counting)
    balancer.release(w1, True)
    await asyncio.sleep(0.05)  # a ping-pong would run thousands of wake-ups in this time
    assert wakes <= 4 and not any(t.done() for t in pickies)
    for task in pickies:
        task.cancel()
    await asyncio.gather(*pickies, return_exceptions=True)
