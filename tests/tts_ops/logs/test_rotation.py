"""Rotation of the log files: lossless under concurrent writers (threads and coroutines), gzip and keep-N,
notifempty, age retention, external logrotate + reopen, and the size / daily schedules."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

from tests.tts_ops.logs.util import ACCESS_LINE, all_lines, configure, emit_access, log_files, read_text
from tts_ops.logs.synthesis import log_synthesis

THREADS, PER_THREAD, ROTATIONS = 8, 5000, 20


def assert_each_once(lines: list[str], expected: set[str]) -> None:
    ids = []
    for line in lines:
        m = ACCESS_LINE.match(line)
        assert m, f"mangled access line: {line!r}"
        ids.append(m["request"])
    dupes = [rid for rid, n in Counter(ids).items() if n > 1]
    assert not dupes, f"duplicated: {dupes[:5]}"
    assert set(ids) == expected, f"missing: {sorted(expected - set(ids))[:5]}"


def thresholds() -> list[int]:
    """Rotate at evenly spread points of the writers' progress (plus jitter), so the rotations interleave
    with the writes however fast or slow the machine is."""
    total = THREADS * PER_THREAD
    return [k * total // (ROTATIONS + 1) for k in range(1, ROTATIONS + 1)]


def test_rotation_under_threads_loses_nothing(tmp_path):
    manager, _ = configure(tmp_path, keep=100)
    start = threading.Barrier(THREADS + 1)
    progress = [0] * THREADS  # each writer updates its own slot

    def writer(t: int) -> None:
        start.wait()
        for seq in range(PER_THREAD):
            emit_access(f"t{t}-{seq}")
            progress[t] = seq + 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    rng = random.Random(1)
    rotated_while_writing = 0
    for target in thresholds():
        while sum(progress) < target and any(t.is_alive() for t in threads):
            time.sleep(0.0002)
        time.sleep(rng.uniform(0, 0.002))
        if manager.rotate_all() and any(t.is_alive() for t in threads):
            rotated_while_writing += 1
    for thread in threads:
        thread.join()

    lines = all_lines(manager, "access")
    assert len(lines) == THREADS * PER_THREAD
    assert_each_once(lines, {f"t{t}-{seq}" for t in range(THREADS) for seq in range(PER_THREAD)})
    assert rotated_while_writing >= ROTATIONS // 2
    assert all(p.name.endswith(".gz") for p in log_files(manager, "access")[:-1])


async def test_rotation_between_coroutines_loses_nothing(tmp_path):
    manager, _ = configure(tmp_path, keep=100)
    progress = [0] * THREADS

    async def writer(c: int) -> None:
        for seq in range(PER_THREAD):
            emit_access(f"c{c}-{seq}")
            progress[c] = seq + 1
            if seq % 50 == 0:
                await asyncio.sleep(0)  # let the other writers and the rotator in

    async def rotator() -> int:
        rng = random.Random(2)
        rotated_while_writing = 0
        for i, target in enumerate(thresholds()):
            while sum(progress) < target:
                await asyncio.sleep(0)
            # On the loop (as the scheduler does), or from a thread while the loop keeps writing.
            rotated = manager.rotate_all() if i % 2 else await asyncio.to_thread(manager.rotate_all)
            if rotated and sum(progress) < THREADS * PER_THREAD:
                rotated_while_writing += 1
            await asyncio.sleep(rng.uniform(0, 0.001))
        return rotated_while_writing

    *_, rotated_while_writing = await asyncio.gather(*(writer(c) for c in range(THREADS)), rotator())
    lines = all_lines(manager, "access")
    assert len(lines) == THREADS * PER_THREAD
    assert_each_once(lines, {f"c{c}-{seq}" for c in range(THREADS) for seq in range(PER_THREAD)})
    assert isinstance(rotated_while_writing, int)  # rotator()'s count (the writers return None)
    assert rotated_while_writing >= ROTATIONS // 2


def write_round(i: int) -> None:
    emit_access(f"round{i}")
    logging.getLogger("tts_ops.supervisor").warning("round%d", i)
    log_synthesis({"request_id": f"round{i}"}, text="你好", log_text=False)


def test_gzip_keeps_the_newest_and_skips_empty_files(tmp_path):
    manager, _ = configure(tmp_path, keep=3)
    stamp = datetime.now().replace(microsecond=0)
    for i in range(12):
        write_round(i)
        # One stamp for all: the names get counters -1 … -11, which must order numerically, not as text.
        assert set(manager.rotate_all(stamp)) == {"access", "error", "synthesis"}
    manager.wait_background()
    for name in ("access", "error", "synthesis"):
        rotated = log_files(manager, name)[:-1]
        assert [p.name for p in rotated] == [f"{name}.log.{stamp:%Y%m%d-%H%M%S}-{n}.gz" for n in (9, 10, 11)]
        assert [f"round{i}" in read_text(p) for i, p in zip((9, 10, 11), rotated, strict=True)] == [True] * 3
        assert manager.paths[name].stat().st_size == 0
    # Nothing written since: nothing to rotate, no new file.
    before = sorted(os.listdir(tmp_path))
    assert manager.rotate_all(wait=True) == {}
    assert sorted(os.listdir(tmp_path)) == before
    assert not [n for n in before if n.endswith(".tmp")]


def test_rotate_reports_files_and_bytes_and_can_skip_compression(tmp_path):
    manager, _ = configure(tmp_path, compress=False)
    emit_access("one")
    size = manager.paths["access"].stat().st_size
    result = manager.rotate_all(wait=True)
    assert list(result) == ["access"] and result["access"]["bytes"] == size
    rotated = log_files(manager, "access")[0]
    assert str(rotated) == result["access"]["file"] and not rotated.name.endswith(".gz")
    assert "request=one" in rotated.read_text()
    assert manager.stats()["rotations"] == 1


def test_rotated_files_older_than_the_retention_are_deleted(tmp_path):
    manager, _ = configure(tmp_path, keep=10)  # output.rotated_log_retention_days: 30 (default)
    emit_access("old")
    manager.rotate_all(datetime.now() - timedelta(days=40), wait=True)
    emit_access("recent")
    manager.rotate_all(wait=True)
    assert [line.endswith("request=recent") for line in all_lines(manager, "access")] == [True]


def test_reopen_after_external_logrotate(tmp_path):
    manager, _ = configure(tmp_path)
    access = manager.paths["access"]
    emit_access("before")
    moved = access.rename(tmp_path / "access.log.1")  # what logrotate (no copytruncate) does
    emit_access("between")  # still goes to the open file, now moved: nothing lost
    assert all(manager.reopen_all().values())
    emit_access("after")

    def ids(text: str) -> list[str]:
        found = [ACCESS_LINE.match(line) for line in text.splitlines()]
        assert None not in found, f"not an access line in:\n{text}"
        return [m["request"] for m in found if m is not None]

    assert ids(moved.read_text()) == ["before", "between"]
    assert ids(access.read_text()) == ["after"]


def test_rotate_follows_a_file_moved_without_reopen(tmp_path):
    manager, _ = configure(tmp_path)
    emit_access("before")
    moved = manager.paths["access"].rename(tmp_path / "elsewhere.log")
    assert "access" not in manager.rotate_all()  # nothing of ours to rename: just reopens the path
    emit_access("after")
    assert "request=after" in manager.paths["access"].read_text()
    assert "request=after" not in moved.read_text()


def test_size_mode_rotates_only_big_files(tmp_path):
    manager, _ = configure(tmp_path, rotate_when="size", rotate_max_bytes=2000)
    assert manager.schedule == ("interval", {"seconds": 60})
    logging.getLogger("tts_ops.supervisor").warning("small")
    assert not manager.due() and manager.rotate_if_due() == {}
    while manager.paths["access"].stat().st_size <= 2000:
        emit_access("x")
    assert manager.due()
    assert list(manager.scheduled_rotate()) == ["access"]
    assert not manager.due()
    manager.wait_background()
    assert len(log_files(manager, "access")) == 2 and len(log_files(manager, "error")) == 1


def test_daily_and_hourly_schedule(tmp_path):
    manager, _ = configure(tmp_path / "d", rotate_when="daily")
    assert manager.schedule == ("cron", {"hour": 0, "minute": 0})
    now = datetime.now()
    tomorrow = now + timedelta(days=1)
    assert not manager.due(now) and manager.due(tomorrow)
    emit_access("x")
    assert manager.rotate_if_due(now) == {}
    assert list(manager.rotate_if_due(tomorrow)) == ["access"]
    assert not manager.due(tomorrow)

    manager, _ = configure(tmp_path / "h", rotate_when="hourly")
    assert manager.schedule == ("cron", {"minute": 0})
    assert manager.due(time.time() + 3600) and not manager.due(time.time())


def test_startup_rotates_a_file_left_from_an_earlier_day(tmp_path):
    manager, _ = configure(tmp_path)
    emit_access("yesterday")
    manager.close()
    day_ago = time.time() - 86400
    os.utime(tmp_path / "access.log", (day_ago, day_ago))
    manager, _ = configure(tmp_path)
    emit_access("today")
    assert [line[-9:] for line in all_lines(manager, "access")] == ["yesterday", "est=today"]
    assert len(log_files(manager, "access")) == 2
