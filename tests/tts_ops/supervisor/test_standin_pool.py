"""The Supervisor with stand-in worker processes (``standin_worker.py``: real processes answering /health on their
sockets, no model): hung detection of a SIGSTOPped worker, recovery of a suspect, crash loops reaching FAILED and
leaving it after the cool-down, and rolling restarts racing recycles and admin restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal

import pytest

from tests.fakes.standin_worker import StandinSpec
from tts_ops.supervisor import PoolSettings, Supervisor, WorkerHandle, WorkerState
from tts_ops.supervisor.pool import worker_seq

from .conftest import pid_of, until

S = WorkerState
BOOT_S = 30  # generous: a stand-in boots in well under a second, but the machine is shared


@pytest.fixture
def standin(runtime_dir):
    def make(*args: str, **overrides) -> StandinSpec:
        settings = dict(engine="stand-in", runtime_dir=runtime_dir, boot_timeout_s=BOOT_S, probe_interval_s=0.5,
                        probe_timeout_s=0.1, failure_threshold=3, kill_grace_s=0.5,
                        policy={"backoff_initial_s": 0.05}, args=args)
        settings.update(overrides)
        return StandinSpec(**settings)

    return make


@pytest.fixture
def start(supervisors):
    async def start(spec: StandinSpec, count: int = 1, **settings) -> Supervisor:
        settings.setdefault("drain_timeout_s", 1.0)
        settings.setdefault("watchdog_interval_s", 3600)  # recycles are triggered by hand
        sup = Supervisor(spec, count, PoolSettings(**settings))
        supervisors.append(sup)
        await sup.start()
        return sup

    return start


async def all_ready(sup: Supervisor, n: int) -> list[WorkerHandle]:
    return await until(lambda: len(sup.ready_workers()) == n and sup.ready_workers(), BOOT_S, f"{n} ready workers")


# -- hung detection -----------------------------------------------------------------------------------------------
async def test_sigstopped_worker_is_hung_after_threshold_probes_killed_and_restarted(standin, start, caplog):
    # A kill grace longer than the wait below: a TERM-then-KILL stop of the hung worker could not pass.
    sup = await start(standin(kill_grace_s=3 * BOOT_S))
    [worker] = await all_ready(sup, 1)
    pid = pid_of(worker)
    caplog.set_level(logging.INFO, "tts_ops.supervisor")
    os.kill(pid, signal.SIGSTOP)
    try:
        await until(lambda: worker.restarts == 1 and worker.state is S.READY, BOOT_S, "restart after hang")
    finally:
        if psutil_alive(pid):
            os.kill(pid, signal.SIGKILL)
    # The third failed probe is the verdict (probes every 0.5 s, each fails after the 0.1 s timeout).
    assert (worker.last_exit_reason or "").startswith("hung: 3 health probes failed"), worker.last_exit_reason
    assert worker.last_exit_code == -signal.SIGKILL  # a stopped process only yields to KILL
    assert worker.pid != pid and sup.restarts_by_reason == {"hung": 1}
    messages = [r.getMessage() for r in caplog.records]
    assert f"[worker=w1 pid={pid}] KILL at once (hung: no TERM grace)" in messages
    assert not [m for m in messages if "after TERM" in m]


async def test_ordinary_stop_of_a_stopped_process_still_sends_term_first(standin, start, caplog):
    """Positive control for the hung case: a retire (scale-down, shutdown) gives TERM its grace, then KILLs."""
    sup = await start(standin())
    [worker] = await all_ready(sup, 1)
    caplog.set_level(logging.INFO, "tts_ops.supervisor")
    os.kill(pid_of(worker), signal.SIGSTOP)
    await asyncio.wait_for(worker.retire("test stop", 0), 10)
    messages = [r.getMessage() for r in caplog.records]
    assert any("did not exit 0.5s after TERM: KILL" in m for m in messages), messages
    assert not [m for m in messages if "KILL at once" in m]
    assert worker.state is S.RETIRED and worker.last_exit_code == -signal.SIGKILL


async def test_suspect_that_answers_again_is_announced_and_not_killed(standin, start):
    sup = await start(standin(failure_threshold=6))
    [worker] = await all_ready(sup, 1)
    recovered: list[int] = []

    def on_change(w: WorkerHandle) -> None:
        if w is worker and w.state is S.READY and not w.probe_failures:
            recovered.append(1)

    sup.add_listener(on_change)
    os.kill(pid_of(worker), signal.SIGSTOP)
    try:
        await until(lambda: worker.probe_failures >= 1, 10, "a failed probe")
    finally:
        os.kill(pid_of(worker), signal.SIGCONT)
    await until(lambda: recovered, 10, "the recovery announced to listeners (the balancer)")
    assert worker.probe_failures == 0 and worker.state is S.READY and worker.restarts == 0


def psutil_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- crash loop and FAILED cool-down ------------------------------------------------------------------------------
async def test_crash_loop_reaches_failed_and_is_retried_after_the_cooldown(standin, start):
    spec = standin("--exit-after-s", "0.3", "--exit-code", "1",
                   policy={"backoff_initial_s": 0.05, "crash_limit": 3, "crash_window_s": 60,
                           "failed_cooldown_s": 0.5})
    sup = await start(spec)
    [worker] = sup.workers.values()
    events: list[tuple[str, int]] = []

    def on_change(w: WorkerHandle) -> None:
        if w.state is not S.READY:
            events.append((w.state.value, w.restarts))

    sup.add_listener(on_change)
    await until(lambda: worker.state is S.FAILED, BOOT_S, "FAILED after three crashes")
    assert worker.restarts == 2 and worker.last_exit_reason == "exit code 1"
    assert sup.restarts_by_reason == {"exit code 1": 3}
    await until(lambda: worker.restarts == 3, 10, "the retry after the cool-down")
    assert events[:9] == [("exited", 0), ("backoff", 0), ("starting", 1), ("exited", 1), ("backoff", 1),
                          ("starting", 2), ("exited", 2), ("failed", 2), ("starting", 3)]


# -- rolling restarts racing other replacements -------------------------------------------------------------------
async def test_reload_during_a_recycle_replaces_everyone_onto_the_new_spec(standin, start):
    """A recycle holds the replacement lock while its successor boots: the rolling restart used to pick the
    worker being recycled, find it retired once it got the lock, and abort (HUP rolled back, 409)."""
    spec = standin("--boot-s", "0.5")
    sup = await start(spec, 2, max_requests=1)
    w1, w2 = await all_ready(sup, 2)
    w1.begin_request()
    w1.end_request(True)  # past its request budget
    sup.check_recycles()
    successor = await until(lambda: sup.workers.get("w1#3"), 5, "the recycle's successor")
    assert successor.id == "w1" and successor.replaces == w1.key
    new_spec = dataclasses.replace(spec, kill_grace_s=0.6)  # what SIGHUP's apply does
    sup.apply(new_spec, sup.settings)
    replaced = await asyncio.wait_for(sup.rolling_restart("reload"), 60)
    # w1#1 was done by the recycle; its successor started on the old spec before the reload, so it goes too.
    assert replaced == ["w2#2->w2#4", "w1#3->w1#5"]
    assert "recycle: served 1" in (w1.last_exit_reason or "") and successor.state is S.RETIRED
    active = sup.active_workers()
    assert sorted(w.key for w in active) == ["w1#5", "w2#4"] and sup.slot_ids() == ["w1", "w2"]
    assert all(w.state is S.READY and w.spec is new_spec for w in active)


async def test_rolling_restart_during_an_admin_restart_does_not_redo_fresh_workers(standin, start):
    sup = await start(standin("--boot-s", "0.5"), 2)
    await all_ready(sup, 2)
    single = asyncio.create_task(sup.restart_worker("w1"))
    await until(lambda: "w1#3" in sup.workers, 5, "the admin restart's successor")
    rolling = asyncio.create_task(sup.rolling_restart())
    assert (await asyncio.wait_for(single, 60)).key == "w1#3"
    replaced = await asyncio.wait_for(rolling, 60)
    # w1#1 was taken by the admin restart; w1#3 started before the rolling restart was asked for, so it is redone.
    assert replaced == ["w2#2->w2#4", "w1#3->w1#5"]
    assert sorted(w.key for w in sup.active_workers()) == ["w1#5", "w2#4"]
    assert all(worker_seq(w) > 3 and w.state is S.READY for w in sup.active_workers())


async def test_rollback_only_replaces_the_selected_workers(standin, start):
    spec = standin()
    sup = await start(spec, 2)
    await all_ready(sup, 2)
    new_spec = dataclasses.replace(spec, kill_grace_s=0.6)
    sup.apply(new_spec, sup.settings)
    await sup.restart_worker("w1")  # w1#3 on the new spec, w2#2 still on the old one
    sup.apply(spec, sup.settings)  # the reload failed: back to the running spec
    replaced = await asyncio.wait_for(sup.rolling_restart("reload rollback", only=lambda w: w.spec is not spec), 60)
    assert replaced == ["w1#3->w1#4"]
    assert [w.key for w in sup.active_workers()] == ["w2#2", "w1#4"]
    assert all(w.spec is spec for w in sup.active_workers())


# -- stable slots -------------------------------------------------------------------------------------------------
async def test_slots_survive_rolling_and_admin_restarts(standin, start):
    sup = await start(standin("--boot-s", "0.3"), 2)
    first = await all_ready(sup, 2)
    assert sorted(w.key for w in first) == ["w1#1", "w2#2"] and sup.slot_ids() == ["w1", "w2"]
    assert {w.socket.name for w in first} == {f"w1-{os.getpid()}-1.sock", f"w2-{os.getpid()}-2.sock"}
    replaced = await asyncio.wait_for(sup.rolling_restart(), 60)
    assert replaced == ["w1#1->w1#3", "w2#2->w2#4"] and sup.slot_ids() == ["w1", "w2"]
    assert not any(w.socket.exists() for w in first)  # retired handles leave no socket behind
    # Replace-first: while the successor boots both handles are listed, the successor marked as replacing, and
    # the slot still means the serving predecessor.
    predecessor = sup.worker("w1")
    assert predecessor is not None and predecessor.key == "w1#3"
    restart = asyncio.create_task(sup.restart_worker("w1"))
    await until(lambda: "w1#5" in sup.workers, 5, "the successor")
    rows = {row["key"]: row for row in sup.snapshot()}
    assert [row["id"] for row in sup.snapshot()] == ["w1", "w1", "w2"]
    assert rows["w1#5"]["replacing"] is True and rows["w1#5"]["replaces"] == "w1#3"
    assert rows["w1#3"]["replacing"] is False and sup.worker("w1") is predecessor
    assert [w.key for w in sup.current_workers()] == ["w1#3", "w2#4"]
    new = await asyncio.wait_for(restart, 60)
    assert new.id == "w1" and not new.replacing and sup.worker("w1") is new
    assert [(w.id, w.state) for w in sup.current_workers()] == [("w1", S.READY), ("w2", S.READY)]
    assert predecessor.generation != new.generation  # (id, generation) names one process for the balancer


async def test_scale_frees_the_highest_slots_and_refills_the_lowest(standin, start):
    sup = await start(standin(), 3)
    await all_ready(sup, 3)
    await sup.scale(1)
    assert sup.slot_ids() == ["w1"]
    await sup.scale(3)
    assert sup.slot_ids() == ["w1", "w2", "w3"]
    assert sorted(w.key for w in sup.workers.values()) == ["w1#1", "w2#4", "w3#5"]
    with pytest.raises(KeyError):
        await sup.restart_worker("w4")


# -- stopping -----------------------------------------------------------------------------------------------------
async def test_idle_worker_retired_with_zero_drain_time_logs_no_drain_timeout(standin, start, caplog):
    sup = await start(standin())
    [worker] = await all_ready(sup, 1)
    caplog.set_level(logging.WARNING, "tts_ops.supervisor")
    await asyncio.wait_for(worker.retire("test stop", 0), 10)
    assert worker.state is S.RETIRED and worker.last_exit_code == 0
    assert not [r.getMessage() for r in caplog.records if "drain deadline" in r.getMessage()]
