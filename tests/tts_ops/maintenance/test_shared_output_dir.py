"""Maintenance of two instances sharing one ``output.dir``: concurrent cleanups delete each expired file once, a file
the other instance deleted first (ENOENT, NFS's ESTALE) is neither an error nor logged, another instance's write in
progress is left alone, and two disk guards free the shortfall about once, not once each."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from tts_ops.config import Config, LoggingConfig
from tts_ops.maintenance import jobs
from tts_ops.maintenance.jobs import RECHECK_EVERY
from tts_ops.maintenance.scheduler import MIB, Maintenance
from tts_ops.storage.output_store import OutputStore

from .support import make_config, write

OLD = "20200101-000000"


def second_instance(config: Config, tmp_path: Path) -> Config:
    """The same output section (shared directory), its own log directory."""
    logs = tmp_path / "logs-b"
    logs.mkdir(exist_ok=True)
    return Config(output=config.output, logging=LoggingConfig(dir=logs))


def instances(tmp_path: Path, disk=None, **output) -> tuple[Maintenance, Maintenance, Path]:
    config = make_config(tmp_path, **output)
    out = config.output.dir
    extra = {"disk_usage": disk} if disk is not None else {}
    a = Maintenance(config, log_manager=None, output_store=OutputStore(out, enabled=True), **extra)
    b = Maintenance(second_instance(config, tmp_path), log_manager=None,
                    output_store=OutputStore(out, enabled=True), **extra)
    return a, b, out


def maintenance_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("tts_ops.maintenance") and r.levelno >= logging.WARNING]


async def test_concurrent_cleanups_delete_each_expired_file_once(tmp_path: Path, caplog) -> None:
    a, b, out = instances(tmp_path, retention_days=7)
    expired = [write(out / f"{OLD}-{i:032x}.wav", 100, age_days=8) for i in range(300)]
    kept = write(out / f"{OLD}-{'f' * 32}.wav", 100, age_days=1)
    caplog.set_level(logging.INFO)
    status_a, status_b = await asyncio.gather(a.run_now("cleanup"), b.run_now("cleanup"))
    results = [status_a["last_result"], status_b["last_result"]]
    assert sum(r["outputs_deleted"] for r in results) == len(expired)
    assert [r["errors"] for r in results] == [0, 0] and not maintenance_warnings(caplog)
    assert not any(p.exists() for p in expired) and kept.exists()


@pytest.mark.parametrize("error", [errno.ENOENT, errno.ESTALE])
async def test_file_deleted_by_the_other_instance_after_listing_is_no_error(tmp_path: Path, caplog, monkeypatch,
                                                                             error) -> None:
    a, _, out = instances(tmp_path, retention_days=7)
    files = [write(out / f"{OLD}-{i:032x}.wav", 100, age_days=8) for i in range(4)]
    real_unlink = os.unlink

    def other_instance_first(path, *, dir_fd=None):
        """The other instance unlinks the file between our stat and our unlink (on NFS: we get ESTALE)."""
        if str(path).startswith(OLD):
            real_unlink(path, dir_fd=dir_fd)
            raise OSError(error, os.strerror(error))
        return real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(jobs.os, "unlink", other_instance_first)
    caplog.set_level(logging.INFO)
    result = (await a.run_now("cleanup"))["last_result"]
    assert result["outputs_deleted"] == 0 and result["errors"] == 0  # not ours to count, and not an error
    assert not maintenance_warnings(caplog) and not any(p.exists() for p in files)


async def test_a_file_gone_between_listing_and_stat_is_skipped(tmp_path: Path, monkeypatch, caplog) -> None:
    a, _, out = instances(tmp_path, retention_days=7)
    files = [write(out / f"{OLD}-{i:032x}.wav", 100, age_days=8) for i in range(3)]
    real_files = jobs.OwnedDir.files

    def listed_then_deleted_elsewhere(self, pattern):
        found = real_files(self, pattern)
        for cand in found:
            (out / cand.name).unlink()
        return found

    monkeypatch.setattr(jobs.OwnedDir, "files", listed_then_deleted_elsewhere)
    caplog.set_level(logging.INFO)
    result = (await a.run_now("cleanup"))["last_result"]
    assert (result["outputs_deleted"], result["errors"]) == (0, 0) and not maintenance_warnings(caplog)
    assert not any(p.exists() for p in files)


def test_stat_error_other_than_gone_is_still_an_error(tmp_path: Path, monkeypatch) -> None:
    """Positive control for the above: only "gone" is forgiven."""
    out = tmp_path / "out"
    out.mkdir()
    cand = jobs.Candidate(write(out / f"{OLD}-{'a' * 32}.wav", 10, age_days=8).name, 10, 0.0)
    real_stat = os.stat

    def denied(path, *args, **kwargs):
        if str(path) == cand.name:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(jobs.os, "stat", denied)
    tally = jobs.Tally()
    with jobs.OwnedDir(out) as owned:
        jobs._remove(owned, cand, "outputs", tally)
    assert tally.error_count == 1 and "Permission denied" in tally.errors[0]


async def test_cleanup_leaves_the_other_instance_s_write_in_progress(tmp_path: Path) -> None:
    _, b, out = instances(tmp_path, retention_days=7)
    writing = write(out / f".{OLD}-{'c' * 32}.wav.{'d' * 32}.tmp", 50)  # being written by instance A right now
    crashed = write(out / f".{OLD}-{'e' * 32}.wav.{'0' * 32}.tmp", 50, age_days=1)  # left by a crash
    result = (await b.run_now("cleanup"))["last_result"]
    assert writing.exists() and not crashed.exists() and result["tmp_deleted"] == 1


class SharedDisk:
    """One filesystem under both instances: free = capacity - bytes of saved outputs."""

    def __init__(self, out: Path, capacity: int) -> None:
        self.out, self.capacity = out, capacity
        self.on_first_call = None

    def __call__(self, path: str) -> SimpleNamespace:
        used = sum(p.stat().st_size for p in self.out.iterdir() if p.is_file())
        free = self.capacity - used
        hook, self.on_first_call = self.on_first_call, None
        if hook is not None:
            hook()  # the other instance acts right after our measurement: ours is stale from here on
        return SimpleNamespace(total=self.capacity, used=used, free=free)


@pytest.mark.parametrize("recheck", [True, False])
async def test_two_disk_guards_free_the_shortfall_about_once(tmp_path: Path, monkeypatch, recheck) -> None:
    size, count = 10_000, 200
    config = make_config(tmp_path, min_free_mb=1)
    out = config.output.dir
    for i in range(count):
        write(out / f"{OLD}-{i:032x}.wav", size, age_days=300 - i)
    target = int(1 * MIB * 1.10)
    shortfall = 60 * size  # 60 files' worth below the recovery level
    disk = SharedDisk(out, capacity=target - shortfall + count * size)
    a, b, _ = instances(tmp_path, disk=disk, min_free_mb=1)
    # Instance B's guard frees the whole shortfall right after A measured it.
    disk.on_first_call = lambda: jobs.delete_oldest_outputs(out, shortfall)
    if not recheck:  # what counting only one's own deletions would do: A frees the shortfall a second time
        real = jobs.delete_oldest_outputs
        monkeypatch.setattr(jobs, "delete_oldest_outputs", lambda d, need, shortfall=None: real(d, need))
    result = (await a.run_now("disk_guard"))["last_result"]
    left = len(list(out.iterdir()))
    if recheck:
        assert result["outputs_deleted"] <= RECHECK_EVERY and left >= count - 60 - RECHECK_EVERY
    else:  # positive control: the over-deletion the re-measuring prevents
        assert result["outputs_deleted"] == 60 and left == count - 120
    assert not result["low"]
