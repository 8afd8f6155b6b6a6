"""A reloaded config reaches the maintenance jobs (retention, thresholds, directories, cleanup interval) and the
output store (``enabled``), instead of the values copied at construction."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

from tts_ops.maintenance.scheduler import MIB, Maintenance
from tts_ops.storage.output_store import OutputStore

from .support import make_config, write


def roomy(path: str) -> SimpleNamespace:
    return SimpleNamespace(free=100_000 * MIB)


async def test_new_retention_and_directory_are_used_by_the_next_cleanup(tmp_path: Path) -> None:
    config = make_config(tmp_path, retention_days=30)
    aged = write(config.output.dir / "20200101-000000-aged.wav", 10, age_days=10)
    other_dir = tmp_path / "elsewhere"
    other_dir.mkdir()
    aged_elsewhere = write(other_dir / "20200101-000000-other.wav", 10, age_days=10)
    maint = Maintenance(config, log_manager=None, output_store=OutputStore(config.output.dir, enabled=True),
                        disk_usage=roomy)
    await maint.run_now("cleanup")
    assert aged.exists()  # 10 days < 30

    maint.apply(config.model_copy(update={"output": config.output.model_copy(
        update={"retention_days": 7, "dir": other_dir})}))
    await maint.run_now("cleanup")
    assert not aged_elsewhere.exists() and aged.exists()  # the new directory, with the new retention


async def test_changed_cleanup_interval_reschedules_the_job(tmp_path: Path, caplog) -> None:
    config = make_config(tmp_path, cleanup_interval_s=3600)
    maint = Maintenance(config, log_manager=None, output_store=OutputStore(config.output.dir, enabled=True),
                        disk_usage=roomy)
    maint.start()
    caplog.set_level(logging.INFO, "tts_ops.maintenance")
    try:
        assert {e["id"]: e for e in maint.status()}["cleanup"]["trigger"] == "interval[1:00:00]"
        maint.apply(config.model_copy(update={"output": config.output.model_copy(
            update={"cleanup_interval_s": 120.0})}))
        assert {e["id"]: e for e in maint.status()}["cleanup"]["trigger"] == "interval[0:02:00]"
        assert maint._scheduler is not None
        assert maint._scheduler.get_job("cleanup").misfire_grace_time == 120
        assert any("cleanup rescheduled" in r.getMessage() for r in caplog.records)
        caplog.clear()
        maint.apply(config.model_copy(update={"output": config.output.model_copy(
            update={"cleanup_interval_s": 120.0, "retention_days": 3})}))
        assert not any("rescheduled" in r.getMessage() for r in caplog.records)  # same interval: untouched
    finally:
        await maint.shutdown()


async def test_disabling_the_guard_during_low_space_resumes_saving(tmp_path: Path) -> None:
    config = make_config(tmp_path, min_free_mb=10)
    store = OutputStore(config.output.dir, enabled=True)
    maint = Maintenance(config, log_manager=None, output_store=store,
                        disk_usage=lambda path: SimpleNamespace(free=1 * MIB))
    await maint.run_now("disk_guard")
    assert store.paused and maint.low_space
    maint.apply(config.model_copy(update={"output": config.output.model_copy(update={"min_free_mb": 0})}))
    assert not store.paused and not maint.low_space


def test_output_store_enabled_can_change_at_run_time(tmp_path: Path, caplog) -> None:
    store = OutputStore(tmp_path / "out", enabled=False)
    assert store.save("req1", b"RIFF", "wav") is None
    caplog.set_level(logging.INFO, "tts_ops.output_store")
    store.apply(store.directory, enabled=True)
    name = store.save("req1", b"RIFF", "wav")
    assert name and (tmp_path / "out" / name).read_bytes() == b"RIFF"
    assert any("enabled" in r.getMessage() for r in caplog.records)
    store.apply(store.directory, enabled=False)
    assert store.save("req2", b"RIFF", "wav") is None
