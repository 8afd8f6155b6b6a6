"""Scheduling: jobs run by themselves on the running loop, status() reports them, run_now() shares the job
function, a raising job is recorded without stopping the scheduler, and shutdown is clean."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from tts_ops.maintenance.scheduler import JOB_IDS, MIB, Maintenance
from tts_ops.storage.output_store import OutputStore

from .support import StandInLogManager, make_config, write

# How long a negative check watches for something that must not happen; each one has a positive control showing
# that the thing does happen within the same window when it should (cleanup runs every 0.2 s in these tests).
QUIET_WINDOW_S = 0.5


def roomy(path: str) -> SimpleNamespace:
    return SimpleNamespace(free=100_000 * MIB)


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def by_id(maint: Maintenance) -> dict[str, dict]:
    return {entry["id"]: entry for entry in maint.status()}


async def test_jobs_run_by_themselves_and_report_status(tmp_path: Path) -> None:
    config = make_config(tmp_path, cleanup_interval_s=0.2)
    expired = write(config.output.dir / "20200101-000000-old.wav", 10, age_days=30)
    manager = StandInLogManager(config.logging.dir, schedule=("interval", {"seconds": 0.2}))
    maint = Maintenance(config, log_manager=manager, output_store=OutputStore(config.output.dir, enabled=True),
                        disk_usage=roomy)
    before = by_id(maint)
    assert set(before) == set(JOB_IDS) and before["cleanup"]["next_run"] is None
    maint.start()
    try:
        await wait_for(lambda: maint.counters["runs"]["cleanup"] >= 2 and maint.counters["runs"]["rotate_logs"] >= 1
                       and maint.counters["runs"]["disk_guard"] >= 1)
        assert not expired.exists() and manager.rotations >= 1
        status = by_id(maint)
        cleanup = status["cleanup"]
        assert cleanup["trigger"].startswith("interval[") and cleanup["last_error"] is None
        assert cleanup["last_result"]["outputs_deleted"] in (0, 1) and cleanup["failures"] == 0
        assert datetime.fromisoformat(cleanup["next_run"]) > datetime.fromisoformat(cleanup["last_run"])
        assert cleanup["last_duration_s"] >= 0
        assert status["rotate_logs"]["last_result"] == {"access": True, "events": True}
        assert status["disk_guard"]["last_result"]["low"] is False  # ran at start, not after 60 s

        manual = await maint.run_now("cleanup")
        assert manual["id"] == "cleanup" and manual["last_error"] is None
        assert manual["runs"] == maint.counters["runs"]["cleanup"]
        with pytest.raises(KeyError):
            await maint.run_now("nope")
        # Positive control for the check after shutdown: while running, the same window does see runs.
        runs = dict(maint.counters["runs"])
        await asyncio.sleep(QUIET_WINDOW_S)
        assert maint.counters["runs"]["cleanup"] > runs["cleanup"]
    finally:
        await maint.shutdown()
    runs = dict(maint.counters["runs"])
    await asyncio.sleep(QUIET_WINDOW_S)
    assert maint.counters["runs"] == runs  # nothing runs after shutdown
    assert all(entry["next_run"] is None for entry in maint.status())


async def test_default_schedule_descriptions(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    maint = Maintenance(config, log_manager=StandInLogManager(config.logging.dir),
                        output_store=OutputStore(config.output.dir, enabled=False), disk_usage=roomy)
    maint.start()
    try:
        status = by_id(maint)
        assert status["rotate_logs"]["trigger"].startswith("cron[") and "hour='0'" in status["rotate_logs"]["trigger"]
        assert status["cleanup"]["trigger"] == "interval[1:00:00]"
        assert status["disk_guard"]["trigger"] == "interval[0:01:00]"
        assert all(entry["next_run"] for entry in status.values())
        with pytest.raises(RuntimeError):
            maint.start()
    finally:
        await maint.shutdown()


class BrokenLogManager(StandInLogManager):
    def rotate_all(self) -> dict:
        self.rotations += 1
        raise OSError(28, "No space left on device")


async def test_failing_job_is_recorded_and_scheduler_keeps_running(tmp_path: Path, caplog) -> None:
    config = make_config(tmp_path, cleanup_interval_s=0.2)
    manager = BrokenLogManager(config.logging.dir, schedule=("interval", {"seconds": 0.2}))
    maint = Maintenance(config, log_manager=manager, output_store=OutputStore(config.output.dir, enabled=True),
                        disk_usage=roomy)
    caplog.set_level(logging.DEBUG, logger="tts_ops.maintenance")
    maint.start()
    try:
        await wait_for(lambda: maint.counters["failures"]["rotate_logs"] >= 3
                       and maint.counters["runs"]["cleanup"] >= 3)
        status = by_id(maint)
        assert "No space left on device" in status["rotate_logs"]["last_error"]
        assert status["rotate_logs"]["last_result"] is None and status["rotate_logs"]["next_run"]
        assert status["cleanup"]["failures"] == 0
        manual = await maint.run_now("rotate_logs")  # best effort: recorded, not raised
        assert manual["failures"] == manual["runs"] and manual["last_error"]
    finally:
        await maint.shutdown()
    errors = [r for r in caplog.records if r.name == "tts_ops.maintenance" and r.levelno == logging.ERROR]
    assert len(errors) >= 3 and sum(1 for r in errors if r.exc_info) == 1  # one traceback per failure streak


async def test_bad_log_schedule_does_not_cost_the_other_jobs(tmp_path: Path) -> None:
    config = make_config(tmp_path, cleanup_interval_s=0.2)
    manager = StandInLogManager(config.logging.dir, schedule=("cron", {"hour": 99}))
    maint = Maintenance(config, log_manager=manager, output_store=OutputStore(config.output.dir, enabled=True),
                        disk_usage=roomy)
    maint.start()
    try:
        status = by_id(maint)
        assert status["rotate_logs"]["trigger"] == "invalid" and "not scheduled" in status["rotate_logs"]["last_error"]
        await wait_for(lambda: maint.counters["runs"]["cleanup"] >= 1)
    finally:
        await maint.shutdown()


async def test_shutdown_waits_for_a_running_job(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    release = asyncio.Event()

    class SlowLogManager(StandInLogManager):
        async def rotate_all(self) -> dict:  # an async rotate_all is awaited too
            await release.wait()
            return {"slow": True}

    maint = Maintenance(config, log_manager=SlowLogManager(config.logging.dir),
                        output_store=OutputStore(config.output.dir, enabled=True), disk_usage=roomy)
    maint.start()
    run = asyncio.create_task(maint.run_now("rotate_logs"))
    await wait_for(lambda: by_id(maint)["rotate_logs"]["running"])
    stopping = asyncio.create_task(maint.shutdown(timeout=5))
    done, _ = await asyncio.wait({stopping}, timeout=QUIET_WINDOW_S)
    assert not done  # still waiting for the job
    release.set()
    # Positive control: once the job ends, shutdown finishes within the same window.
    await asyncio.wait_for(stopping, timeout=QUIET_WINDOW_S)
    assert (await run)["last_result"] == {"slow": True}

    stuck = Maintenance(config, log_manager=SlowLogManager(config.logging.dir),
                        output_store=OutputStore(config.output.dir, enabled=True), disk_usage=roomy)
    release.clear()
    stuck.start()
    run = asyncio.create_task(stuck.run_now("rotate_logs"))
    await wait_for(lambda: by_id(stuck)["rotate_logs"]["running"])
    await stuck.shutdown(timeout=0.1)  # gives up and cancels
    assert by_id(stuck)["rotate_logs"]["last_error"] == "cancelled"
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_scheduled_rotate_is_preferred_over_rotate_all(tmp_path: Path) -> None:
    config = make_config(tmp_path)

    class SizeModeManager(StandInLogManager):  # like tts_ops.logs.manager.LogManager in size mode: check, not force
        def scheduled_rotate(self) -> dict:
            return {"checked": True}

    manager = SizeModeManager(config.logging.dir, schedule=("interval", {"seconds": 60}))
    maint = Maintenance(config, log_manager=manager, output_store=OutputStore(config.output.dir, enabled=True))
    assert (await maint.run_now("rotate_logs"))["last_result"] == {"checked": True}
    assert manager.rotations == 0


async def test_without_log_manager_rotation_is_not_scheduled(tmp_path: Path, caplog) -> None:
    config = make_config(tmp_path)
    maint = Maintenance(config, log_manager=None, output_store=OutputStore(config.output.dir, enabled=True),
                        disk_usage=roomy)
    maint.start()
    try:
        status = by_id(maint)
        assert status["rotate_logs"]["next_run"] is None and status["rotate_logs"]["last_error"] is None
        assert status["cleanup"]["next_run"] is not None
    finally:
        await maint.shutdown()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_run_now_survives_its_caller_going_away(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    release = asyncio.Event()

    class SlowLogManager(StandInLogManager):
        async def rotate_all(self) -> dict:
            await release.wait()
            return {"done": True}

    maint = Maintenance(config, log_manager=SlowLogManager(config.logging.dir),
                        output_store=OutputStore(config.output.dir, enabled=True))
    caller = asyncio.create_task(maint.run_now("rotate_logs"))
    await wait_for(lambda: by_id(maint)["rotate_logs"]["running"])
    caller.cancel()  # e.g. the admin client disconnected
    await asyncio.gather(caller, return_exceptions=True)
    release.set()
    await maint.shutdown()  # waits for the orphaned run
    assert by_id(maint)["rotate_logs"]["last_result"] == {"done": True}
