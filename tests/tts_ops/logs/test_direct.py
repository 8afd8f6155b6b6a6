"""Direct lines: an access or synthesis line is written straight to its file only when that file is all logging
would do with the record, and the line is the one the record path writes."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from tests.tts_ops.logs.util import ACCESS_LINE, configure, emit_access
from tts_ops.logs.direct import sole_file
from tts_ops.logs.formatters import AccessFormatter, SynthesisFormatter, access_line, iso_time
from tts_ops.logs.synthesis import log_quality, log_synthesis

access_log = logging.getLogger("tts_ops.access")
synthesis_log = logging.getLogger("tts_ops.synthesis")


def test_the_configured_files_are_written_directly(tmp_path):
    manager, _ = configure(tmp_path)
    assert sole_file(access_log, AccessFormatter) is manager.handlers["access"]
    assert sole_file(synthesis_log, SynthesisFormatter) is manager.handlers["synthesis"]
    assert sole_file(access_log, SynthesisFormatter) is None  # another formatter: the record path


def test_any_other_destination_or_filter_takes_the_record_path(tmp_path):
    manager, _ = configure(tmp_path, verbose=True)
    assert sole_file(access_log, AccessFormatter) is None  # the console at DEBUG sees access lines too
    manager, _ = configure(tmp_path)
    manager.handlers["synthesis"].addFilter(lambda record: True)
    assert sole_file(synthesis_log, SynthesisFormatter) is None
    synthesis_log.disabled = True
    try:
        assert sole_file(synthesis_log, SynthesisFormatter) is None
    finally:
        synthesis_log.disabled = False


def test_a_direct_access_line_is_the_record_path_line(tmp_path):
    manager, _ = configure(tmp_path)
    emit_access("r1", path='/tts\n"x"')
    manager.handlers["access"].write_line(access_line(0.0, "127.0.0.1", "POST", '/tts\n"x"', "HTTP/1.1", 200, 1234,
                                                      12.34, "MISS", "w1", "r1"))
    recorded, direct = manager.paths["access"].read_text().splitlines()
    assert ACCESS_LINE.match(direct), direct
    assert recorded.split(" ", 1)[1] == direct.split(" ", 1)[1]  # all but the time


def test_synthesis_and_quality_lines_reach_a_capture_handler_as_records(caplog):
    # Without setup_logging (as in most unit tests) the records propagate to pytest's capture: no direct write.
    with caplog.at_level(logging.INFO):
        log_synthesis({"request_id": "r1", "cache": "HIT"}, text="你好", log_text=False)
        log_quality({"request_id": "r1", "event": "mos", "mos": 4.1})
    lines = [r.synthesis for r in caplog.records if r.name == "tts_ops.synthesis"]
    assert [line["request_id"] for line in lines] == ["r1", "r1"] and lines[1]["mos"] == 4.1


def test_direct_synthesis_lines_are_json(tmp_path):
    manager, _ = configure(tmp_path)
    log_synthesis({"request_id": "r1", "cache": "HIT"}, text="你好", log_text=False)
    log_quality({"request_id": "r1", "event": "mos", "mos": 4.1})
    first, second = (json.loads(line) for line in manager.paths["synthesis"].read_text().splitlines())
    assert (first["request_id"], first["cache"], first["text_len"]) == ("r1", "HIT", 2)
    assert (second["event"], second["mos"]) == ("mos", 4.1)


def test_iso_time_within_a_second_matches_the_full_conversion():
    for created in (1_700_000_000.0, 1_700_000_000.0004, 1_700_000_000.9994, 1_700_000_000.9999996, 1_700_000_001.5):
        assert iso_time(created) == datetime.fromtimestamp(created).astimezone().isoformat(timespec="milliseconds")
