"""The phonemizer view end to end: ``POST /frontend`` on a real daemon (answered by a worker's engine) and
``tts-ops frontend`` in the operator's shell give the same JSON, in the shape the issue fixes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import http

pytestmark = pytest.mark.slow

TEXT = "我们一起去展览馆，小老虎来了。"


@pytest.fixture(scope="module")
def daemon(module_daemon):
    return module_daemon({"server": {"max_text_chars": 40}}, workers=1)


def assert_shape(view: dict) -> None:
    assert set(view) == {"normalized", "chunks"}
    for chunk in view["chunks"]:
        assert set(chunk) == {"text", "pinyin", "symbols"}
        assert all(isinstance(p, str) for p in chunk["pinyin"]) and chunk["symbols"][-1] == "eos"


def test_frontend_endpoint_shows_the_pinyin_sent_to_the_model(daemon):
    code, headers, body = http("POST", daemon.base_url + "/frontend", {"text": TEXT})
    assert code == 200 and headers["Content-Type"].startswith("application/json"), body
    view = json.loads(body)
    assert_shape(view)
    pinyin = [p for chunk in view["chunks"] for p in chunk["pinyin"]]
    hanzi = [ch for ch in TEXT if "\u4e00" <= ch <= "\u9fff"]
    assert len(pinyin) == len(hanzi)  # one syllable per character for Chinese-only text
    assert pinyin[5:8] == ["zhan2", "lan2", "guan3"] and pinyin[8:11] == ["xiao3", "lao2", "hu3"]  # sandhi applied


@pytest.mark.parametrize("body, status, fragment", [
    ({}, 400, "'text' is required"), ({"text": ""}, 400, "must not be empty"), ({"text": "好", "x": 1}, 400,
                                                                                "unknown field"),
    ({"text": "好" * 41}, 413, "limit is 40"),
])
def test_frontend_endpoint_rejects_bad_bodies_with_json(daemon, body, status, fragment):
    code, _, raw = http("POST", daemon.base_url + "/frontend", body)
    assert code == status and fragment in json.loads(raw)["error"], raw


def test_cli_frontend_json_matches_the_endpoint(daemon):
    out = subprocess.run([sys.executable, "-m", "tts_ops.cli", "frontend", TEXT, "--json", "--config",
                          str(daemon.config_path)], capture_output=True, text=True, timeout=120, env=daemon.env)
    assert out.returncode == 0, out.stderr
    _, _, body = http("POST", daemon.base_url + "/frontend", {"text": TEXT})
    assert json.loads(out.stdout) == json.loads(body)


def test_cli_frontend_table_names_skipped_characters(daemon):
    out = subprocess.run([sys.executable, "-m", "tts_ops.cli", "frontend", "你好😀", "--config",
                          str(daemon.config_path)], capture_output=True, text=True, timeout=120, env=daemon.env)
    assert out.returncode == 0, out.stderr
    assert "pinyin:  ni2 hao3" in out.stdout and "skipped: 😀 (U+1F600)" in out.stdout, out.stdout


@pytest.mark.parametrize("stream", [False, True])
def test_characters_the_voice_cannot_read_are_named_in_synthesis_log(daemon, stream):
    request_id = f"skipped-{int(stream)}"
    # A different text per case: a cache HIT synthesizes nothing, so it skips nothing either.
    text = f"你好😀世界☃{'流式' if stream else '整段'}。"
    code, _, body = http("POST", daemon.base_url + "/tts", {"text": text, "stream": stream},
                         headers={"X-Request-ID": request_id})
    assert code == 200, body
    log_dir = daemon.workdir / "logs"

    def entry() -> dict | None:
        for path in sorted(log_dir.glob("synthesis.log*")):
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record.get("request_id") == request_id:
                    return record
        return None

    daemon.wait_until(lambda: entry() is not None, 10, what="the request's synthesis.log line")
    record = entry()
    assert record is not None and record["skipped"] == ["U+1F600", "U+2603"], record
