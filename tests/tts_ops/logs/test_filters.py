"""MalformedRequestFilter: aiohttp's parser errors become one rate-limited WARNING line without traceback; every
other record of aiohttp's server logger keeps its level and traceback."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage, BadStatusLine

from tts_ops.logs.filters import MalformedRequestFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def parser_record(exc: BaseException, client: str = "10.0.0.7") -> logging.LogRecord:
    try:
        raise exc
    except BaseException as caught:
        info = (type(caught), caught, caught.__traceback__)
    return logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
                             (client,), info)


def test_parser_error_becomes_one_warning_line_without_traceback():
    f = MalformedRequestFilter()
    record = parser_record(BadStatusLine("GARBAGE"))
    assert f.filter(record)
    assert record.levelno == logging.WARNING and record.levelname == "WARNING"
    assert record.exc_info is None
    message = record.getMessage()
    assert "10.0.0.7" in message and "GARBAGE" in message and "BadStatusLine" in message
    assert "\n" not in logging.Formatter().format(record)


def test_our_own_errors_keep_their_traceback():
    f = MalformedRequestFilter()
    record = parser_record(RuntimeError("our bug"))
    record.msg = "Unhandled exception"
    assert f.filter(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None  # positive control of the test above


def test_rate_limited_per_client_with_one_summary_per_interval():
    clock = Clock()
    f = MalformedRequestFilter(burst=3, interval_s=60, clock=clock)
    kept = [f.filter(parser_record(BadHttpMessage("bad header"))) for _ in range(100)]
    assert kept.count(True) == 3 and kept[:3] == [True, True, True]
    assert f.filter(parser_record(BadHttpMessage("x"), client="10.0.0.8"))  # another client has its own budget
    clock.now += 61
    record = parser_record(BadHttpMessage("bad header"))
    assert f.filter(record)
    assert "97 more suppressed" in record.getMessage()
    following = parser_record(BadHttpMessage("bad header"))
    assert f.filter(following) and "suppressed" not in following.getMessage()


def test_a_client_that_stops_still_gets_its_suppressed_count_reported(caplog):
    clock = Clock()
    f = MalformedRequestFilter(burst=2, interval_s=60, clock=clock)
    for _ in range(10):
        f.filter(parser_record(BadHttpMessage("bad header")))
    with caplog.at_level(logging.WARNING, logger="aiohttp.server"):
        assert f.filter(parser_record(BadHttpMessage("x"), client="10.0.0.9"))  # within the window: no summary yet
        assert not [r for r in caplog.records if "were suppressed" in r.getMessage()]
        clock.now += 61
        f.filter(parser_record(BadHttpMessage("x"), client="10.0.0.9"))  # the first client never came back
    summaries = [r.getMessage() for r in caplog.records if "were suppressed" in r.getMessage()]
    assert summaries == ["8 more malformed HTTP requests from 10.0.0.7 were suppressed"]
