"""The disk guard pauses saving and deletes the oldest outputs when free space is low, warns once per episode,
and resumes (one INFO) only above threshold + 10 %."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from tts_ops.maintenance.scheduler import MIB, Maintenance
from tts_ops.storage.output_store import OutputStore

from .support import StandInLogManager, make_config, write

STAMP = "20250101-000000"


class FakeDisk:
    """One filesystem holding both directories: free = capacity - bytes of saved outputs."""

    def __init__(self, out: Path, capacity: int) -> None:
        self.out = out
        self.capacity = capacity
        self.calls: list[str] = []

    def __call__(self, path: str) -> SimpleNamespace:
        self.calls.append(path)
        used = sum(p.stat().st_size for p in self.out.iterdir() if p.is_file())
        return SimpleNamespace(total=self.capacity, used=used, free=self.capacity - used)


def guard_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tts_ops.maintenance" and r.levelno == level
            and ("disk space" in r.getMessage())]


async def test_low_space_pauses_and_deletes_oldest_first(tmp_path: Path, caplog) -> None:
    config = make_config(tmp_path, min_free_mb=1)
    out = config.output.dir
    files = [write(out / f"{STAMP}-f{i}.wav", 60_000, age_days=10 - i) for i in range(4)]  # f0 is the oldest
    write(out / "notes.txt", 1, age_days=99)  # not ours: never a disk-guard victim
    # Free = 1 MiB + 10 % - 110 kB: below the threshold; two files (120 kB) reach the recovery level.
    disk = FakeDisk(out, capacity=int(1.1 * MIB) - 110_000 + 240_000)
    store = OutputStore(out, enabled=True)
    maint = Maintenance(config, log_manager=None, output_store=store, disk_usage=disk)
    caplog.set_level(logging.INFO, logger="tts_ops.maintenance")

    status = await maint.run_now("disk_guard")
    result = status["last_result"]
    assert status["last_error"] is None
    assert [f.exists() for f in files] == [False, False, True, True]
    assert result["outputs_deleted"] == 2 and result["bytes_freed"] == 120_000
    assert (out / "notes.txt").exists()
    assert maint.counters["files_deleted"] == 2 and maint.counters["files_deleted_by_kind"]["outputs"] == 2
    # Deleting reached threshold + 10 %: the episode ends in the same run.
    assert not store.paused and not result["low"]
    assert len(guard_records(caplog, logging.WARNING)) == 1 and len(guard_records(caplog, logging.INFO)) == 1


async def test_one_warning_per_episode_and_hysteresis(tmp_path: Path, caplog) -> None:
    config = make_config(tmp_path, min_free_mb=10)
    out = config.output.dir
    for i in range(3):
        write(out / f"{STAMP}-f{i}.wav", 1000, age_days=3 - i)
    disk = FakeDisk(out, capacity=5 * MIB)  # even with every output gone, still below 10 MiB
    store = OutputStore(out, enabled=True)
    maint = Maintenance(config, log_manager=None, output_store=store, disk_usage=disk)
    caplog.set_level(logging.INFO, logger="tts_ops.maintenance")

    for _ in range(3):
        result = (await maint.run_now("disk_guard"))["last_result"]
        assert store.paused and result["low"] and result["paused"]
        assert await store.save_async("r", b"data", "wav") is None
    assert list(out.iterdir()) == []
    assert len(guard_records(caplog, logging.WARNING)) == 1

    disk.capacity = 10 * MIB + MIB // 2  # above the threshold but within the 10 % band: still paused
    assert (await maint.run_now("disk_guard"))["last_result"]["paused"]
    assert store.paused and not guard_records(caplog, logging.INFO)

    disk.capacity = 12 * MIB  # recovered
    for _ in range(2):
        result = (await maint.run_now("disk_guard"))["last_result"]
        assert not store.paused and not result["low"]
    assert len(guard_records(caplog, logging.INFO)) == 1
    assert await store.save_async("r", b"data", "wav") is not None

    disk.capacity = MIB  # a new episode warns again
    await maint.run_now("disk_guard")
    assert store.paused and len(guard_records(caplog, logging.WARNING)) == 2


class SplitDisk:
    """Outputs on a roomy filesystem, logs on their own: logs free = capacity - bytes of regular files there
    (lstat: a symlink costs nothing, and its target is not on this disk)."""

    def __init__(self, log_dir: Path, capacity: int) -> None:
        self.log_dir = log_dir
        self.capacity = capacity

    def __call__(self, path: str) -> SimpleNamespace:
        if not path.startswith(str(self.log_dir)):
            return SimpleNamespace(free=100 * MIB)
        used = sum(p.lstat().st_size for p in self.log_dir.iterdir() if p.is_file() and not p.is_symlink())
        return SimpleNamespace(free=self.capacity - used)


async def test_low_log_dir_deletes_oldest_rotated_logs_only(tmp_path: Path, caplog) -> None:
    config = make_config(tmp_path, min_free_mb=1)
    logs = config.logging.dir
    kept_output = write(config.output.dir / f"{STAMP}-keep.wav", 100)
    manager = StandInLogManager(logs)
    live = [write(logs / "access.log", 300_000), write(logs / "events.log", 300_000)]
    rotated = [write(logs / f"access.log.2025010{i}-000000.gz", 100_000, age_days=10 - i) for i in range(4)]
    outside = write(tmp_path / "elsewhere.log.1", 100_000, age_days=99)  # reported by a buggy manager
    manager.extra_rotated.append(outside)
    (logs / "access.log.20240101-000000.gz").symlink_to(outside)  # named like ours, oldest by name
    stray = write(logs / "notes.txt", 10, age_days=99)
    # Free = 1.1 MiB - 250 kB: below the threshold; the three oldest rotated files reach the recovery level.
    disk = SplitDisk(logs, capacity=int(1.1 * MIB) - 250_000 + 1_000_010)
    store = OutputStore(config.output.dir, enabled=True)
    maint = Maintenance(config, log_manager=manager, output_store=store, disk_usage=disk)
    caplog.set_level(logging.INFO, logger="tts_ops.maintenance")

    status = await maint.run_now("disk_guard")
    result = status["last_result"]
    assert status["last_error"] is None
    assert [f.exists() for f in rotated] == [False, False, False, True]
    assert all(f.exists() for f in live) and kept_output.exists() and outside.exists() and stray.exists()
    assert (logs / "access.log.20240101-000000.gz").is_symlink()
    assert result["rotated_logs_deleted"] == 3 and result["outputs_deleted"] == 0
    assert result["bytes_freed"] == 300_000
    assert maint.counters["files_deleted_by_kind"]["rotated_logs"] == 3
    assert maint.counters["bytes_freed"] == 300_000
    # Re-measured after deleting: the episode ends in the same run, saving is not left paused.
    assert not store.paused and not result["low"]
    freed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("disk guard deleted")]
    assert freed == ["disk guard deleted 3 rotated log file(s), 300000 bytes"]
    assert len(guard_records(caplog, logging.INFO)) == 1


async def test_low_log_dir_with_only_live_logs_stays_paused(tmp_path: Path) -> None:
    config = make_config(tmp_path, min_free_mb=1)
    logs = config.logging.dir
    manager = StandInLogManager(logs)
    live = write(logs / "access.log", 500_000)
    old = write(logs / "events.log.20250101-000000", 1000, age_days=3)
    store = OutputStore(config.output.dir, enabled=True)
    maint = Maintenance(config, log_manager=manager, output_store=store, disk_usage=SplitDisk(logs, MIB))
    result = (await maint.run_now("disk_guard"))["last_result"]
    assert not old.exists() and live.exists()  # every rotated file goes, the file being written stays
    assert result["rotated_logs_deleted"] == 1 and store.paused and result["low"]
    result = (await maint.run_now("disk_guard"))["last_result"]
    assert result["rotated_logs_deleted"] == 0 and store.paused and live.exists()


async def test_shared_disk_deletes_outputs_then_rotated_logs(tmp_path: Path) -> None:
    config = make_config(tmp_path, min_free_mb=1)
    out, logs = config.output.dir, config.logging.dir
    output = write(out / f"{STAMP}-a.wav", 100_000, age_days=1)  # newer than the rotated log: still first
    rotated = write(logs / "access.log.20250101-000000.gz", 100_000, age_days=5)
    spare = write(logs / "access.log.20250102-000000.gz", 100_000, age_days=4)

    def disk(path: str) -> SimpleNamespace:  # both directories on one filesystem
        used = sum(p.stat().st_size for d in (out, logs) for p in d.iterdir() if p.is_file())
        return SimpleNamespace(free=int(1.1 * MIB) - 150_000 + 300_000 - used)

    store = OutputStore(out, enabled=True)
    maint = Maintenance(config, log_manager=StandInLogManager(logs), output_store=store, disk_usage=disk)
    result = (await maint.run_now("disk_guard"))["last_result"]
    assert not output.exists() and not rotated.exists() and spare.exists()
    assert result["outputs_deleted"] == 1 and result["rotated_logs_deleted"] == 1
    assert result["bytes_freed"] == 200_000 and not store.paused


async def test_log_dir_low_without_log_manager_deletes_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path, min_free_mb=10)
    kept = write(config.output.dir / f"{STAMP}-keep.wav", 100)
    looks_rotated = write(config.logging.dir / "access.log.20250101-000000.gz", 100, age_days=99)
    store = OutputStore(config.output.dir, enabled=True)
    maint = Maintenance(config, log_manager=None, output_store=store, disk_usage=SplitDisk(config.logging.dir, MIB))
    result = (await maint.run_now("disk_guard"))["last_result"]
    # Without a log manager nothing in logging.dir is known to be ours: pause, but delete nothing.
    assert store.paused and result["outputs_deleted"] == 0 and result["rotated_logs_deleted"] == 0
    assert kept.exists() and looks_rotated.exists()
    assert result["free_mb"]["output"] == 100.0


async def test_disabled_guard_and_failing_disk_usage(tmp_path: Path) -> None:
    config = make_config(tmp_path, min_free_mb=0)
    store = OutputStore(config.output.dir, enabled=True)
    maint = Maintenance(config, log_manager=None, output_store=store,
                        disk_usage=lambda p: (_ for _ in ()).throw(AssertionError("not called")))
    assert (await maint.run_now("disk_guard"))["last_result"] == {"enabled": False}

    def broken(path: str):
        raise PermissionError(13, "Permission denied", path)

    maint = Maintenance(make_config(tmp_path, min_free_mb=5), log_manager=None, output_store=store,
                        disk_usage=broken)
    status = await maint.run_now("disk_guard")
    assert status["failures"] == 1 and "PermissionError" in status["last_error"] and status["last_result"] is None
    assert not store.paused


async def test_missing_output_dir_measures_parent(tmp_path: Path) -> None:
    config = make_config(tmp_path, min_free_mb=1)
    (config.output.dir).rmdir()
    seen: list[str] = []

    def disk(path: str) -> SimpleNamespace:
        seen.append(path)
        return SimpleNamespace(free=100 * MIB)

    maint = Maintenance(config, log_manager=None, output_store=OutputStore(config.output.dir, enabled=True),
                        disk_usage=disk)
    assert (await maint.run_now("disk_guard"))["last_error"] is None
    assert str(tmp_path) in seen
