"""Supervision that must not silently stop: boot timeouts reach FAILED, a failed spawn or a crashed lifecycle task
keeps its slot supervised, the watchdog outlives its own errors, and failed recycles back off. Fake worker
processes (a sleeping Python) stand in for the model: nothing here needs it to load."""

from __future__ import annotations

import asyncio
import errno
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tts_ops.supervisor import PoolSettings, Supervisor, WorkerHandle, WorkerState
from tts_ops.supervisor import pool as supervisor_module
from tts_ops.supervisor.pool import ReplacementFailed
from tts_ops.supervisor.spec import WorkerSpec

from .conftest import until

S = WorkerState


@dataclass(frozen=True)
class SleeperSpec(WorkerSpec):
    """A worker that starts but never answers /health (no socket): it can only time out while booting."""

    def command(self, worker_id: str, socket: Path) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def sleeper(runtime_dir):
    def make(**overrides) -> SleeperSpec:
        settings = dict(engine="fake", runtime_dir=runtime_dir, boot_timeout_s=30, probe_interval_s=0.2,
                        probe_timeout_s=0.1, kill_grace_s=1.0, policy={"backoff_initial_s": 0.05})
        settings.update(overrides)
        return SleeperSpec(**settings)

    return make


# -- boot timeout -------------------------------------------------------------------------------------------------
async def test_boot_timeouts_count_as_boot_failures_and_reach_failed(sleeper, supervisors):
    # crash_limit is out of reach: only counting the timeouts as boot failures can put the slot in FAILED.
    spec = sleeper(boot_timeout_s=0.3, policy={"backoff_initial_s": 0.05, "boot_failure_limit": 2,
                                               "crash_limit": 100, "failed_cooldown_s": 300})
    sup = Supervisor(spec, 1)
    supervisors.append(sup)
    await sup.start()
    [worker] = sup.workers.values()
    await until(lambda: worker.state is S.FAILED, 15, "FAILED after two boot timeouts")
    assert worker.restarts == 1 and (worker.last_exit_reason or "").startswith("boot timeout")
    assert sup.restarts_by_reason == {"boot timeout": 2}


# -- spawn errors and dead lifecycle tasks --------------------------------------------------------------------------
async def test_failed_spawn_is_retried_with_backoff(sleeper, supervisors, monkeypatch):
    real = asyncio.create_subprocess_exec
    calls = []

    async def flaky_exec(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", flaky_exec)
    sup = Supervisor(sleeper(), 1)
    supervisors.append(sup)
    states: list[str] = []
    sup.add_listener(lambda w: states.append(w.state.value))
    await sup.start()
    [worker] = sup.workers.values()
    await until(lambda: worker.pid, 10, "a process after the failed spawn")
    assert worker.restarts == 1 and (worker.last_exit_reason or "").startswith("spawn failed")
    assert states[:3] == ["exited", "backoff", "starting"]
    assert worker._task is not None and not worker._task.done()


async def test_crashed_lifecycle_task_is_logged_and_replaced(sleeper, supervisors, monkeypatch, caplog):
    monkeypatch.setattr(supervisor_module, "LOST_RESPAWN_INITIAL_S", 0.05)
    real_boot = WorkerHandle.boot

    async def buggy_boot(self):
        if self.key == "w1#1":
            raise RuntimeError("bug in boot")
        return await real_boot(self)

    monkeypatch.setattr(WorkerHandle, "boot", buggy_boot)
    caplog.set_level(logging.ERROR, "tts_ops.supervisor")
    sup = Supervisor(sleeper(), 1)
    supervisors.append(sup)
    await sup.start()
    first = sup.workers["w1#1"]
    successor = await until(lambda: sup.workers.get("w1#2"), 10, "a replacement worker in the same slot")
    assert "w1#1" not in sup.workers and successor.replaces == "w1#1" and successor.id == "w1"
    assert not successor.replacing  # the lost handle serves nothing: nobody to hand over from
    await until(lambda: successor.pid, 10, "the replacement's process")
    await until(lambda: first.pid is None, 5, "the orphaned process killed by the dead task's cleanup")
    assert sup.restarts_by_reason == {"supervision error": 1}
    assert any("supervision ended by an unexpected error" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_lost_worker_not_replaced_beyond_target(sleeper, supervisors, monkeypatch):
    monkeypatch.setattr(supervisor_module, "LOST_RESPAWN_INITIAL_S", 0.05)
    boots: list[str] = []
    decisions: list[int] = []  # len(sup.workers) right after each lost-worker respawn decision
    sup = Supervisor(sleeper(), 1)

    async def buggy_boot(self):
        boots.append(self.key)
        if len(boots) == 2:
            sup.target = 0  # scaled down while the replacement was booting, before its own loss is handled
        raise RuntimeError("bug in boot")

    real_respawn = Supervisor._respawn_lost

    async def recorded_respawn(self, lost):
        await real_respawn(self, lost)
        decisions.append(len(self.workers))

    monkeypatch.setattr(WorkerHandle, "boot", buggy_boot)
    monkeypatch.setattr(Supervisor, "_respawn_lost", recorded_respawn)
    supervisors.append(sup)
    await sup.start()
    # Positive control: with the target still 1, the lost w1#1 is replaced by w1#2 (whose boot fails in turn).
    await until(lambda: decisions, 5, "the respawn decision for w1#1")
    assert decisions[0] == 1 and boots[:1] == ["w1#1"]
    await until(lambda: len(decisions) == 2, 5, "the respawn decision for w1#2")
    # The same decision with the target now 0: no new worker, no new boot.
    assert boots == ["w1#1", "w1#2"] and decisions == [1, 0]
    assert sup.workers == {} and sup.restarts_by_reason == {"supervision error": 2}


# -- watchdog -----------------------------------------------------------------------------------------------------
async def test_watchdog_survives_an_error_in_sample(sleeper, supervisors, monkeypatch, caplog):
    caplog.set_level(logging.ERROR, "tts_ops.supervisor")
    sup = Supervisor(sleeper(), 1, PoolSettings(watchdog_interval_s=0.02))
    supervisors.append(sup)
    calls: list[object] = []
    real_sample = sup._sampler.sample

    def flaky_sample(snapshot):
        calls.append(snapshot)
        if len(calls) == 1:
            raise RuntimeError("psutil blew up")
        return real_sample(snapshot)

    monkeypatch.setattr(sup._sampler, "sample", flaky_sample)
    await sup.start()
    [worker] = sup.workers.values()
    await until(lambda: worker.pid, 10, "spawn")
    await until(lambda: len(calls) >= 3 and worker.rss_bytes, 10, "more watchdog rounds after the error")
    assert sup._watchdog is not None and not sup._watchdog.done()
    # The thread gets a snapshot taken on the loop, never the live dict the loop mutates.
    assert all(isinstance(snapshot, list) for snapshot in calls)
    assert any("watchdog round failed" in r.getMessage() for r in caplog.records)


# -- reload -------------------------------------------------------------------------------------------------------
def test_applied_settings_decide_the_next_recycle(sleeper):
    spec = sleeper()
    sup = Supervisor(spec, 1, PoolSettings(max_rss_mb=100, drain_timeout_s=7))
    worker = WorkerHandle("w1", sup.spec, sup._on_change)
    worker.state = S.READY
    worker.record_usage(50 * 2**20, None)
    assert sup._recycle_reason(worker) is None  # control: under the running limit
    new_spec = replace(spec, kill_grace_s=2.0)
    sup.apply(new_spec, PoolSettings(max_rss_mb=10, drain_timeout_s=3))
    assert sup.spec is new_spec and sup.drain_timeout_s == 3 and sup.max_rss_mb == 10
    assert sup._recycle_reason(worker) == "recycle: rss 50 MB > max_rss_mb 10"


# -- recycle backoff ----------------------------------------------------------------------------------------------
async def test_failed_recycles_back_off_and_double(sleeper, caplog, monkeypatch):
    now = [1000.0]
    sup = Supervisor(sleeper(), 1, PoolSettings(max_requests=1), recycle_backoff_initial_s=60,
                     recycle_backoff_max_s=300, clock=lambda: now[0])
    worker = WorkerHandle("w1", sup.spec, sup._on_change)
    worker.state, worker.recycle_after, worker.served = S.READY, 1, 5
    sup.workers[worker.key] = worker
    attempts: list[float] = []

    async def failing_replace(old, reason):
        attempts.append(now[0])
        raise ReplacementFailed(f"successor of {old.id} did not become ready (boot failure (exit 3))")

    monkeypatch.setattr(sup, "replace", failing_replace)
    caplog.set_level(logging.ERROR, "tts_ops.supervisor")

    async def tick(at: float) -> None:
        now[0] = 1000.0 + at
        sup.check_recycles()
        sup.check_recycles()  # a second tick before the first attempt ran must not start another
        await asyncio.gather(*list(sup._background))

    for at in (0, 5, 59.9, 60, 100, 179.9, 180, 419.9, 420, 719.9, 720, 1019.9, 1020):
        await tick(at)
    assert [t - 1000 for t in attempts] == [0, 60, 180, 420, 720, 1020]  # 60, 120, 240, then capped at 300
    failures = [r.getMessage() for r in caplog.records if "next attempt in" in r.getMessage()]
    assert len(failures) == len(attempts) and failures[0].endswith("next attempt in 60s")
    assert failures[-1].endswith("next attempt in 300s")

    async def working_replace(old, reason):
        attempts.append(now[0])
        return old

    monkeypatch.setattr(sup, "replace", working_replace)
    await tick(1320)
    assert len(attempts) == 7 and worker.key not in sup._recycle_retry
    assert sup.restarts_by_reason == {"recycle: requests": 1}
