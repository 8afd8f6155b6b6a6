"""Where records go: access lines only to access.log, warnings and worker output to error.log, operator
messages to stderr (text or JSON), synthesis JSON lines with the text only when asked; and failures of the
log directory or disk that must never reach the code that logs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.tts_ops.logs.util import ACCESS_LINE, configure, emit_access
from tts_ops.http.middleware import request_context
from tts_ops.logs.handlers import ReopenableFileHandler
from tts_ops.logs.synthesis import log_synthesis


def emit_mix() -> None:
    emit_access("req-1")
    logging.getLogger("tts_ops.supervisor").warning("w3 health probe failed")
    logging.getLogger("tts_ops.worker").info("[worker=w1 pid=42] loading mb_melgan.tflite")
    logging.getLogger("tts_ops.worker").debug("[worker=w1 pid=42] debug chatter")
    logging.getLogger("tts_ops.server").info("listening on :8080")


def test_each_record_goes_to_its_files(tmp_path):
    manager, stderr = configure(tmp_path)
    emit_mix()
    access = manager.paths["access"].read_text().splitlines()
    error = manager.paths["error"].read_text()
    assert len(access) == 1
    m = ACCESS_LINE.match(access[0])
    assert m and m.group("client", "method", "path", "version", "status", "bytes", "latency", "cache", "worker",
                         "request") == ("127.0.0.1", "POST", "/tts", "HTTP/1.1", "200", "1234", "12.3", "MISS", "w1",
                                        "req-1")
    assert "req-1" not in error and "req-1" not in stderr.getvalue()
    assert " WARNING tts_ops.supervisor: w3 health probe failed" in error
    assert " INFO tts_ops.worker: [worker=w1 pid=42] loading mb_melgan.tflite" in error
    assert "debug chatter" in error  # worker output at any level
    assert "listening" not in error
    out = stderr.getvalue()
    assert "w3 health probe failed" in out and "mb_melgan.tflite" in out and "listening on :8080" in out
    assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d WARNING tts_ops.supervisor: w3 health probe failed$",
                    out.splitlines()[0])
    assert "debug chatter" not in out
    assert manager.paths["synthesis"].read_text() == ""


def test_verbose_stderr_gets_access_lines(tmp_path):
    manager, stderr = configure(tmp_path, verbose=True)
    emit_mix()
    assert "request=req-1" in stderr.getvalue() and "debug chatter" in stderr.getvalue()
    assert "req-1" not in manager.paths["error"].read_text()


def test_tracebacks_land_in_error_log(tmp_path):
    manager, _ = configure(tmp_path)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tts_ops.server").exception("unhandled error in POST /tts")
    error = manager.paths["error"].read_text()
    assert "ERROR tts_ops.server: unhandled error in POST /tts\nTraceback" in error
    assert "ValueError: boom" in error


def test_stderr_json_lines(tmp_path):
    manager, stderr = configure(tmp_path, stderr_format="json")
    logging.getLogger("tts_ops.supervisor").warning("w%d failed", 3, extra={"worker": "w3", "request_id": "r9"})
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        logging.getLogger("tts_ops.server").exception("oops\nsecond line")
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert {k: first[k] for k in ("level", "logger", "message", "worker", "request_id")} == {
        "level": "WARNING", "logger": "tts_ops.supervisor", "message": "w3 failed", "worker": "w3",
        "request_id": "r9"}
    assert first["ts"][:2] == "20" and "T" in first["ts"]
    assert second["message"] == "oops\nsecond line" and "ZeroDivisionError" in second["exc"]


def test_synthesis_line_without_text(tmp_path):
    manager, _ = configure(tmp_path)
    text = "欢迎使用语音合成。"
    log_synthesis({"request_id": "r1", "emotion": "happy", "speed": 1.2, "voice": "baker", "format": "wav",
                   "audio_s": 2.0, "synthesis_s": 0.5, "worker": "w2", "cache": False, "status": 200,
                   "text": text}, text=text, log_text=False)
    (line,) = manager.paths["synthesis"].read_text(encoding="utf-8").splitlines()
    obj = json.loads(line)
    assert list(obj) == ["time", "request_id", "text_len", "text_sha256", "emotion", "speed", "voice", "format",
                         "audio_s", "synthesis_s", "rtf", "worker", "cache", "status"]
    assert obj["text_len"] == len(text) and obj["text_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert (obj["rtf"], obj["cache"], obj["status"], obj["request_id"]) == (0.25, "MISS", 200, "r1")
    assert "欢迎" not in line and "text" not in obj


def test_synthesis_line_with_text_keeps_utf8(tmp_path):
    manager, _ = configure(tmp_path, log_text=True)
    text = "今天天气很好"
    log_synthesis({"request_id": "r2", "cache": "HIT", "rtf": 0.1}, text=text, log_text=True)
    raw = manager.paths["synthesis"].read_bytes()
    assert text.encode("utf-8") in raw  # raw UTF-8, not \\u escapes
    obj = json.loads(raw)
    assert (obj["text"], obj["cache"], obj["rtf"]) == (text, "HIT", 0.1)


@pytest.mark.filterwarnings("ignore::aiohttp.web.NotAppKeyWarning")  # the middleware's str request keys
async def test_middleware_access_line(tmp_path):
    manager, stderr = configure(tmp_path)

    async def tts(request: web.Request) -> web.Response:
        request["worker_id"] = "w1"
        return web.Response(body=b"RIFF1234", headers={"X-Cache": "HIT"})

    app = web.Application(middlewares=[request_context])
    app.router.add_post("/tts", tts)
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/tts?text=secret", headers={"X-Request-ID": "abc-123"})
        assert resp.status == 200
    (line,) = manager.paths["access"].read_text().splitlines()
    m = ACCESS_LINE.match(line)
    assert m, line
    assert m.group("method", "path", "version", "status", "bytes", "cache", "worker", "request") == (
        "POST", "/tts", "HTTP/1.1", "200", "8", "HIT", "w1", "abc-123")
    assert "secret" not in line  # the query string (it may carry the text) is left out
    assert "abc-123" not in stderr.getvalue()


def test_access_fields_cannot_forge_lines(tmp_path):
    manager, _ = configure(tmp_path)
    emit_access("r1", path='/tts\n2024-01-01 forged "line"')
    (line,) = manager.paths["access"].read_text().splitlines()
    assert '\\x0a2024-01-01 forged \\"line\\"' in line


def test_setup_twice_does_not_duplicate(tmp_path):
    configure(tmp_path)
    root_handlers = len(logging.getLogger().handlers)
    manager, stderr = configure(tmp_path)
    assert len(logging.getLogger().handlers) == root_handlers
    logging.getLogger("tts_ops.supervisor").warning("once")
    emit_access("once")
    assert stderr.getvalue().count("once") == 1
    assert manager.paths["error"].read_text().count("once") == 1
    assert manager.paths["access"].read_text().count("request=once") == 1
    manager.close()
    assert len(logging.getLogger().handlers) == root_handlers - 2
    assert logging.getLogger("tts_ops.access").propagate


def test_unusable_log_dir_falls_back_to_stderr(tmp_path):
    (tmp_path / "afile").write_text("not a directory")  # fails even for root, unlike chmod
    manager, stderr = configure(tmp_path / "afile" / "logs")
    out = stderr.getvalue()
    assert "cannot use log directory" in out and "logging to stderr only" in out
    emit_access("r1")
    log_synthesis({"request_id": "r1"}, text="x", log_text=False)
    logging.getLogger("tts_ops.supervisor").warning("still heard")
    assert "still heard" in stderr.getvalue()
    assert manager.rotate_all() == {} and not any(manager.reopen_all().values())
    assert stderr.getvalue().count("cannot") == 1  # one clear message, not one per line


def test_disk_full_is_reported_once_and_never_raised(tmp_path, capsys):
    (tmp_path / "full.log").symlink_to("/dev/full")
    handler = ReopenableFileHandler(tmp_path / "full.log")
    logger = logging.getLogger("tts_ops.test.full")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for i in range(5):
            logger.warning("line %d", i)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
    err = capsys.readouterr().err
    assert err.count("No space left on device") == 1
    assert handler.dropped == 5 and handler.bytes_written == 0


def test_journald_falls_back_to_stderr_when_python_systemd_is_missing(tmp_path):
    if importlib.util.find_spec("systemd.journal") is not None:
        pytest.skip("python-systemd is installed")
    _, stderr = configure(tmp_path, journald=True)
    logging.getLogger("tts_ops.supervisor").warning("via stderr")
    out = stderr.getvalue()
    assert out.count("JournalHandler is unavailable") == 1 and "via stderr" in out


def test_a_basicconfig_console_handler_is_replaced_not_doubled(tmp_path):
    root = logging.getLogger()
    cli_handler = logging.StreamHandler()  # what `tts-ops` main's logging.basicConfig installs
    root.addHandler(cli_handler)
    try:
        manager, _ = configure(tmp_path)
        assert cli_handler not in root.handlers
        manager.close()
        assert cli_handler in root.handlers
    finally:
        root.removeHandler(cli_handler)
