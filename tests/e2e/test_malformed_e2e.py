"""A flood of malformed HTTP requests against a real ``tts-ops serve``: each is answered 400, and error.log
records them as a few rate-limited WARNING lines without traceback instead of one traceback per request
(before: 300 requests added 179 KB)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from tests.conftest import http

pytestmark = pytest.mark.slow

REQUESTS = 300
MALFORMED = (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
             b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nX: \x01\x02\r\n\r\n")
# MalformedRequestFilter: 5 lines per client per 60 s (the test's requests all come from 127.0.0.1 and take far
# less than 60 s), each under 400 bytes (time, level, logger, address, reason cut at 200 characters): <= 2000 bytes.
# 4096 leaves room for one unrelated line while staying two orders of magnitude under one traceback per request.
MAX_GROWTH_BYTES = 4096


def send_raw(host: str, port: int, payload: bytes) -> bytes:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(payload)
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after its 400
            answer += chunk
    return answer


def test_malformed_requests_are_bounded_warnings_without_traceback(daemon):
    url = urlsplit(daemon.base_url)
    error_log = daemon.workdir / "logs" / "error.log"
    before = error_log.stat().st_size if error_log.exists() else 0
    answers = [send_raw(url.hostname, url.port, MALFORMED[i % len(MALFORMED)]) for i in range(REQUESTS)]
    assert all(answer.split(b" ", 2)[1:2] == [b"400"] for answer in answers), {a[:40] for a in answers}
    # aiohttp logs before it writes the 400, so every record is in the file once every answer is read.
    added = error_log.read_bytes()[before:].decode(errors="replace")
    assert "malformed HTTP request from 127.0.0.1" in added, added  # positive control: they are logged at all
    assert "WARNING" in added
    assert "Traceback" not in added, added[:3000]
    assert len(added.encode()) <= MAX_GROWTH_BYTES, added[:3000]
    code, _, _ = http("GET", daemon.base_url + "/health")
    assert code == 200  # the daemon still serves well-formed requests
