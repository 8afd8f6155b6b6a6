"""The Supervisor with real worker processes (bundled model, no daemon): boot, replacement without losing
capacity, scaling, recycling by request count and RSS, reporting, clean stop, sessions and parent-death."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tts_ops.supervisor import PoolSettings, Supervisor, WorkerHandle, WorkerState
from tts_ops.supervisor import handle as handle_module
from tts_ops.supervisor.spec import WorkerSpec

from .conftest import pid_of, until

S = WorkerState
REPO = Path(__file__).resolve().parents[3]
BOOT_S = 60  # generous bound for one worker to load and warm up on a loaded CI machine


@pytest.fixture
def make_spec(model_store_dir, runtime_dir):
    def make(**overrides) -> WorkerSpec:
        settings = dict(engine="fastspeech2-baker", runtime_dir=runtime_dir, store_dir=model_store_dir,
                        boot_timeout_s=BOOT_S, probe_interval_s=0.2, probe_timeout_s=0.15, failure_threshold=3,
                        kill_grace_s=3.0, policy={"backoff_initial_s": 0.1})
        settings.update(overrides)
        return WorkerSpec(**settings)

    return make


@pytest.fixture
async def make_supervisor(make_spec):
    """Factory for started supervisors; every one is stopped (and its pids checked gone) at teardown."""
    started: list[Supervisor] = []
    pids: set[int] = set()

    def remember_pid(worker: WorkerHandle) -> None:
        if worker.pid:
            pids.add(worker.pid)

    async def make(count: int = 1, spec: WorkerSpec | None = None, **settings) -> Supervisor:
        settings.setdefault("drain_timeout_s", 5.0)
        sup = Supervisor(spec or make_spec(), count, PoolSettings(**settings))
        sup.add_listener(remember_pid)
        started.append(sup)
        await sup.start()
        return sup

    yield make
    for sup in started:
        try:
            await asyncio.wait_for(sup.stop(drain_timeout_s=1), 20)
        finally:
            sup.kill_all()
    await until(lambda: not any(alive(pid) for pid in pids), 10, "worker processes gone after the test")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def ready(sup: Supervisor, n: int = 1) -> list[WorkerHandle]:
    return await until(lambda: len(sup.ready_workers()) >= n and sup.ready_workers(), BOOT_S, f"{n} ready workers")


class ReadySampler:
    """Records the number of READY workers at every worker event and every 20 ms."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.samples: list[int] = []
        self.events: list[tuple[str, str]] = []
        sup.add_listener(self._on_change)
        self._task = asyncio.create_task(self._poll())

    def _on_change(self, worker: WorkerHandle) -> None:
        self.events.append((worker.key, worker.state.value))
        self.samples.append(len(self.sup.ready_workers()))

    async def _poll(self) -> None:
        while True:
            self.samples.append(len(self.sup.ready_workers()))
            await asyncio.sleep(0.02)

    async def stop(self) -> list[int]:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.sup._listeners.remove(self._on_change)
        return self.samples


# -- start --------------------------------------------------------------------------------------------------------
async def test_one_worker_becomes_ready_with_model_version(make_supervisor, runtime_dir):
    sup = await make_supervisor(1)
    assert runtime_dir.stat().st_mode & 0o777 == 0o700
    [worker] = await ready(sup)
    assert worker.id == "w1" and worker.pid and worker.restarts == 0
    assert worker.health["model_version"] and worker.health["state"] == "ready"
    assert worker.key == "w1#1" and worker.socket == runtime_dir / f"w1-{os.getpid()}-1.sock" and worker.socket.exists()
    assert worker.session is not None and worker.ready_at is not None
    # Own session (and process group): a Ctrl-C in the operator's terminal does not reach it.
    assert os.getsid(worker.pid) == worker.pid and os.getpgid(worker.pid) == worker.pid


async def test_a_booting_worker_is_probed_when_it_prints(make_supervisor, monkeypatch):
    """With the boot poll out of the picture (10 minutes), the worker's own "ready: ..." line is what gets it probed
    and seen READY: the supervisor does not wait for a poll tick after the worker is ready."""
    monkeypatch.setattr(handle_module, "BOOT_POLL_S", 600.0)
    sup = await make_supervisor(1)
    [worker] = await ready(sup)
    assert worker.health["state"] == "ready"


async def test_snapshot_reports_every_field(make_supervisor):
    sup = await make_supervisor(1, watchdog_interval_s=0.1, max_requests=10, max_requests_jitter=5)
    [worker] = await ready(sup)
    await until(lambda: worker.rss_bytes, 5, "an RSS sample")
    [row] = sup.snapshot()
    assert set(row) >= {"id", "key", "replacing", "pid", "state", "uptime_s", "restarts", "last_exit_reason",
                        "last_exit_code", "rss_mb", "cpu_percent", "in_flight", "served", "last_probe_ms",
                        "probe_failures", "replaces", "model_version", "recycle_after"}
    assert row["id"] == "w1" and row["key"] == "w1#1" and row["replacing"] is False
    assert row["pid"] == worker.pid and row["state"] == "ready"
    assert row["uptime_s"] >= 0 and row["restarts"] == 0 and row["last_exit_reason"] is None
    assert row["rss_mb"] > 10 and row["in_flight"] == 0 and row["served"] == 0
    assert row["last_probe_ms"] is not None and row["probe_failures"] == 0 and row["replaces"] is None
    assert row["model_version"] == worker.health["model_version"]
    assert 10 <= row["recycle_after"] <= 15


async def test_restart_unknown_worker_is_key_error(make_spec):
    sup = Supervisor(make_spec(), 1)  # not started: the lookup comes first
    with pytest.raises(KeyError):
        await sup.restart_worker("w99")


# -- replacement --------------------------------------------------------------------------------------------------
async def test_replace_keeps_a_ready_worker_at_every_moment(make_supervisor):
    sup = await make_supervisor(1)
    [old] = await ready(sup)
    old_pid = pid_of(old)
    sampler = ReadySampler(sup)
    new = await sup.replace(old, "test replacement")
    samples = await sampler.stop()
    assert len(samples) > 20 and min(samples) >= 1, samples
    assert new.state is S.READY and new.replaces == old.key and new.id == old.id and new.key != old.key
    assert not new.replacing and sup.worker(old.id) is new  # the slot was handed over
    assert old.state is S.RETIRED and old.key not in sup.workers and sup.retired_count == 1
    assert (old.last_exit_reason or "").startswith(f"replaced by {new.key}") and old.last_exit_code == 0  # graceful
    assert not alive(old_pid)
    # The successor was READY before the old one started draining.
    events = sampler.events
    assert events.index((new.key, "ready")) < events.index((old.key, "draining"))
    # A planned replacement is not an unplanned exit.
    assert sup.restarts_by_reason == {}


async def test_restart_worker_replaces_it(make_supervisor):
    sup = await make_supervisor(1)
    [old] = await ready(sup)
    new = await sup.restart_worker(old.id)
    assert new.state is S.READY and list(sup.workers) == [new.key] and new.id == old.id == "w1"


async def test_scale_up_then_down_retires_one(make_supervisor):
    sup = await make_supervisor(1)
    await ready(sup)
    await sup.scale(2)
    assert sup.target == 2 and len(sup.workers) == 2
    await ready(sup, 2)
    pids = {w.pid for w in sup.workers.values()}
    sampler = ReadySampler(sup)
    await sup.scale(1)
    samples = await sampler.stop()
    assert sup.target == 1 and len(sup.workers) == 1 and sup.retired_count == 1
    [survivor] = sup.workers.values()
    assert survivor.state is S.READY and min(samples) >= 1
    gone = pids - {survivor.pid}
    assert len(gone) == 1 and not alive(gone.pop())


# -- recycling ----------------------------------------------------------------------------------------------------
async def test_request_budget_recycles_with_capacity_kept(make_supervisor):
    sup = await make_supervisor(1, max_requests=1, max_requests_jitter=0, watchdog_interval_s=0.1)
    [old] = await ready(sup)
    assert old.recycle_after == 1
    sampler = ReadySampler(sup)
    for _ in range(2):  # the balancer's accounting, done by hand
        old.begin_request()
        old.end_request(True)
    assert old.served == 2
    new = await until(lambda: old.state is S.RETIRED and sup.ready_workers(), BOOT_S + 10, "recycle")
    samples = await sampler.stop()
    assert min(samples) >= 1, samples
    [new] = new
    assert new.replaces == old.key and new.id == old.id and new.served == 0
    assert "recycle: served 2 >= max_requests 1" in (old.last_exit_reason or "")
    assert sup.restarts_by_reason.get("recycle: requests") == 1


async def test_rss_limit_recycles(make_supervisor):
    sup = await make_supervisor(1, max_rss_mb=1, watchdog_interval_s=0.1)
    [old] = await ready(sup)
    sampler = ReadySampler(sup)
    await until(lambda: old.state is S.RETIRED, BOOT_S + 10, "RSS recycle")
    samples = await sampler.stop()
    assert min(samples) >= 1, samples
    reason = old.last_exit_reason or ""
    assert "recycle: rss" in reason and "> max_rss_mb 1" in reason
    assert sup.restarts_by_reason.get("recycle: rss", 0) >= 1
    assert any(w.replaces == old.key for w in sup.workers.values())


# -- crash handling -----------------------------------------------------------------------------------------------
async def test_killed_worker_is_restarted_with_a_new_pid(make_supervisor):
    sup = await make_supervisor(1)
    [worker] = await ready(sup)
    pid = pid_of(worker)
    os.kill(pid, signal.SIGKILL)
    await until(lambda: worker.state is S.READY and worker.restarts == 1, BOOT_S, "restart after SIGKILL")
    assert worker.pid != pid and worker.last_exit_reason == "killed by SIGKILL"
    assert sup.restarts_by_reason == {"killed by SIGKILL": 1}


async def test_retire_while_the_ready_probe_is_in_flight(make_supervisor, monkeypatch):
    """Stopping a booting worker while its last boot probe (the one that says "ready") is still answering must
    end in RETIRED, not in IllegalTransition(stopping -> ready) and a worker stuck in STOPPING."""
    gate, reached = asyncio.Event(), asyncio.Event()
    real_probe = WorkerHandle.probe

    async def slow_probe(self, quiet: bool = False) -> bool:
        ok = await real_probe(self, quiet)
        if ok and self.state is S.STARTING and not gate.is_set():
            reached.set()
            await gate.wait()
        return ok

    monkeypatch.setattr(WorkerHandle, "probe", slow_probe)
    sup = await make_supervisor(1)
    [worker] = sup.workers.values()
    await asyncio.wait_for(reached.wait(), BOOT_S)
    retiring = asyncio.create_task(worker.retire("stop during boot", 1))
    await until(lambda: worker.state is S.STOPPING, 5, "STOPPING")
    gate.set()
    await asyncio.wait_for(retiring, 10)
    assert worker.state is S.RETIRED and worker.key not in sup.workers


# -- stopping -----------------------------------------------------------------------------------------------------
async def test_stop_leaves_no_worker_processes(make_supervisor):
    sup = await make_supervisor(2)
    workers = await ready(sup, 2)
    pids = [pid_of(w) for w in workers]
    assert all(alive(pid) for pid in pids)
    await asyncio.wait_for(sup.stop(drain_timeout_s=2), 20)
    assert sup.workers == {} and all(w.state is S.RETIRED for w in workers)
    assert [w.last_exit_code for w in workers] == [0, 0]  # TERM honoured, no KILL needed
    assert not any(alive(pid) for pid in pids)
    assert not any(psutil.pid_exists(pid) for pid in pids)  # reaped, not zombies


async def test_stop_during_boot_leaves_no_worker_processes(make_supervisor):
    sup = await make_supervisor(1)
    [worker] = sup.workers.values()
    await until(lambda: worker.pid, 5, "spawn")
    pid = worker.pid
    await asyncio.wait_for(sup.stop(drain_timeout_s=1), 20)
    assert worker.state is S.RETIRED and not alive(pid)


DEATH_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from tts_ops.supervisor import Supervisor
    from tts_ops.supervisor.spec import WorkerSpec

    async def main():
        spec = WorkerSpec(engine="fastspeech2-baker", runtime_dir=Path(sys.argv[1]), store_dir=Path(sys.argv[2]),
                          probe_interval_s=0.2, probe_timeout_s=0.15)
        sup = Supervisor(spec, 1)
        await sup.start()
        await sup.wait_for(lambda: bool(sup.ready_workers()), 60)
        print(sup.ready_workers()[0].pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


def test_workers_die_with_a_killed_supervisor(model_store_dir, runtime_dir):
    """SIGKILL leaves the supervisor no chance to clean up: the kernel's parent-death signal must stop the
    worker, which lives in its own session and would otherwise be orphaned."""
    proc = subprocess.Popen([sys.executable, "-c", DEATH_SCRIPT, str(runtime_dir), str(model_store_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    worker_pid = None
    assert proc.stdout is not None  # stdout=PIPE
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), f"no worker pid from the supervisor script (exit {proc.poll()})"
        worker_pid = int(line)
        assert alive(worker_pid) and os.getsid(worker_pid) == worker_pid != os.getsid(proc.pid)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 5
        while alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(worker_pid), "worker outlived its SIGKILLed supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if worker_pid and alive(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
