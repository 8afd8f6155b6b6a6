"""The file handler's failure edges: a write cut short by an error does not glue the next line onto the fragment,
and a closed handler drops lines instead of reopening (and leaking) its file."""

from __future__ import annotations

import errno
import os

import tts_ops.logs.handlers as handlers
from tts_ops.logs.handlers import ReopenableFileHandler


def test_a_line_cut_short_by_a_full_disk_is_ended_so_the_next_line_starts_its_own(tmp_path, monkeypatch):
    handler = ReopenableFileHandler(tmp_path / "access.log")
    real_write = os.write
    calls = []

    def flaky_write(fd: int, data) -> int:
        calls.append(bytes(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data)[:5])  # a short write...
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full
        return real_write(fd, data)

    monkeypatch.setattr(handlers.os, "write", flaky_write)
    handler.write_line("first line")
    monkeypatch.setattr(handlers.os, "write", real_write)
    handler.write_line("second line")
    handler.close()
    assert (tmp_path / "access.log").read_text().splitlines() == ["first", "second line"]
    assert handler.dropped == 1


def test_a_closed_handler_drops_lines_and_never_reopens(tmp_path):
    path = tmp_path / "events.log"
    handler = ReopenableFileHandler(path)
    handler.write_line("kept")
    handler.close()
    handler.write_line("after close")
    assert handler.reopen() is False and not handler.is_open
    assert handler.rotate() is None
    assert path.read_text() == "kept\n"
    assert handler.dropped == 1
