"""The cleanup job deletes only expired files the daemon owns: saved outputs matching the store's pattern and
rotated logs reported by the log manager, as regular files directly inside their own directories."""

from __future__ import annotations

import os
from pathlib import Path

from tts_ops.maintenance.scheduler import Maintenance
from tts_ops.storage.output_store import OutputStore

from .support import StandInLogManager, make_config, write

OLD = "20200101-000000"


async def test_cleanup_deletes_only_expired_owned_files(tmp_path: Path) -> None:
    config = make_config(tmp_path, retention_days=7, rotated_log_retention_days=30)
    out, logs = config.output.dir, config.logging.dir
    outside = tmp_path / "sibling"
    outside.mkdir()

    old_outputs = [write(out / f"{OLD}-old{i}.wav", 1000 + i, age_days=8) for i in range(2)]
    new_output = write(out / f"{OLD}-new.wav", 10, age_days=1)  # old-looking name, recent mtime: kept
    stale_tmp = write(out / f".{OLD}-crash.wav.{'a' * 32}.tmp", 7, age_days=1)
    fresh_tmp = write(out / f".{OLD}-writing.wav.{'b' * 32}.tmp", 7)
    notes = write(out / "notes.txt", 5, age_days=100)
    lookalike = write(out / f"{OLD}-x.wav.bak", 5, age_days=100)
    (out / f"{OLD}-dir.wav").mkdir()
    os.utime(out / f"{OLD}-dir.wav", (0, 0))
    outside_old = write(outside / f"{OLD}-victim.wav", 50, age_days=100)
    os.symlink(outside_old, out / f"{OLD}-link.wav")  # named like ours, points outside
    os.symlink(outside, out / "linkdir")  # a symlinked directory is never entered

    old_logs = [write(logs / "access.log.1", 300, age_days=31), write(logs / "events.log.2026-01-01.gz", 400,
                                                                      age_days=40)]
    new_log = write(logs / "events.log.3", 20, age_days=2)
    active = write(logs / "access.log", 9, age_days=100)
    outside_log = write(outside / "other.log.1", 60, age_days=100)
    os.symlink(outside_log, logs / "linked.log.1")

    manager = StandInLogManager(logs)
    manager.extra_rotated = [outside_log, logs / "access.log", logs / "sub" / "x.log.1", Path("/etc/passwd")]
    maint = Maintenance(config, log_manager=manager, output_store=OutputStore(out, enabled=True))
    status = await maint.run_now("cleanup")

    result = status["last_result"]
    assert status["last_error"] is None and status["runs"] == 1 and status["failures"] == 0
    assert result["outputs_deleted"] == 2 and result["rotated_logs_deleted"] == 2 and result["tmp_deleted"] == 1
    assert result["bytes_freed"] == 1000 + 1001 + 300 + 400 + 7
    assert result["errors"] == 0
    for gone in [*old_outputs, *old_logs, stale_tmp]:
        assert not gone.exists(), gone
    for kept in [new_output, fresh_tmp, notes, lookalike, outside_old, new_log, active, outside_log]:
        assert kept.exists(), kept
    assert (out / f"{OLD}-link.wav").is_symlink() and (logs / "linked.log.1").is_symlink()
    assert (out / f"{OLD}-dir.wav").is_dir()
    assert maint.counters["files_deleted"] == 5
    assert maint.counters["files_deleted_by_kind"] == {"outputs": 2, "tmp": 1, "rotated_logs": 2}
    assert maint.counters["bytes_freed"] == result["bytes_freed"]

    again = await maint.run_now("cleanup")  # idempotent
    assert again["last_result"]["bytes_freed"] == 0 and again["runs"] == 2


async def test_cleanup_without_directories_or_log_manager(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    os.rmdir(config.output.dir)  # saving never enabled: the directory does not exist yet
    maint = Maintenance(config, log_manager=None, output_store=OutputStore(config.output.dir, enabled=False))
    status = await maint.run_now("cleanup")
    assert status["last_error"] is None and status["last_result"]["bytes_freed"] == 0
    assert (await maint.run_now("rotate_logs"))["last_result"] == {"skipped": "no log manager"}


async def test_unreadable_file_is_reported_not_fatal(tmp_path: Path, monkeypatch) -> None:
    config = make_config(tmp_path)
    write(config.output.dir / f"{OLD}-a.wav", 10, age_days=30)
    write(config.output.dir / f"{OLD}-b.wav", 10, age_days=30)
    real_unlink = os.unlink

    def flaky_unlink(path, *, dir_fd=None):
        if str(path).endswith("-a.wav"):
            raise PermissionError(13, "Permission denied")
        return real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", flaky_unlink)
    maint = Maintenance(config, log_manager=None, output_store=OutputStore(config.output.dir, enabled=True))
    result = (await maint.run_now("cleanup"))["last_result"]
    assert result["outputs_deleted"] == 1 and result["errors"] == 1
    assert "Permission denied" in result["error_samples"][0]
