"""The disk guard pauses saving and deletes the oldest outputs when free space is low, warns once per episode,
and resumes (one INFO) only above threshold + 10 %."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from tts_ops.maintenance import MIB, Maintenance
from tts_ops.output_store import OutputStore

from .support import make_config, write

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


async def test_log_dir_low_pauses_without_deleting(tmp_path: Path) -> None:
    config = make_config(tmp_path, min_free_mb=10)
    kept = write(config.output.dir / f"{STAMP}-keep.wav", 100)

    def disk(path: str) -> SimpleNamespace:  # logs on a full disk, outputs on a roomy one
        return SimpleNamespace(free=MIB if path.startswith(str(config.logging.dir)) else 100 * MIB)

    store = OutputStore(config.output.dir, enabled=True)
    maint = Maintenance(config, log_manager=None, output_store=store, disk_usage=disk)
    result = (await maint.run_now("disk_guard"))["last_result"]
    assert store.paused and result["outputs_deleted"] == 0 and kept.exists()
    assert result["free_mb"] == {"output": 100.0, "logs": 1.0}


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
