"""Helpers shared by the output store and maintenance tests: a config on tmp dirs, a stand-in log manager
(the real one, tts_ops.logs.manager, is written separately; only its interface matters here) and file factories."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from tts_ops.config import Config, LoggingConfig, OutputConfig

DAY = 86400.0


class StandInLogManager:
    """Satisfies ``tts_ops.maintenance.scheduler.RotatingLogs``: scheduled_rotate() (a forced rotate_all(), as the
    real manager does on a cron schedule), rotated_files(), schedule, paths."""

    def __init__(self, log_dir: Path, schedule: tuple[str, dict] = ("cron", {"hour": 0, "minute": 0})) -> None:
        self.log_dir = log_dir
        self.schedule = schedule
        self.paths = {"access": log_dir / "access.log", "events": log_dir / "events.log"}
        self.rotations = 0
        self.extra_rotated: list[Path] = []  # paths a buggy manager might report (outside, symlinks...)

    def rotate_all(self) -> dict | Awaitable[dict]:  # a subclass may be async: Maintenance awaits it
        self.rotations += 1
        return {"access": True, "events": True}

    def scheduled_rotate(self):
        return self.rotate_all()  # a subclass's async rotate_all returns a coroutine: awaited by Maintenance

    def rotated_files(self) -> list[Path]:
        return sorted(self.log_dir.glob("*.log.*")) + list(self.extra_rotated)


def make_config(tmp_path: Path, **output: Any) -> Config:
    out = tmp_path / "output"
    logs = tmp_path / "logs"
    out.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    return Config(output=OutputConfig(dir=out, **output), logging=LoggingConfig(dir=logs))


def write(path: Path, size: int = 100, age_days: float = 0.0) -> Path:
    path.write_bytes(b"x" * size)
    if age_days:
        stamp = time.time() - age_days * DAY
        os.utime(path, (stamp, stamp))
    return path

