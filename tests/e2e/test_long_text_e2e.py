"""A long non-streamed /tts text on two idle real workers: both synthesize its chunks (named in synthesis.log), and
the joined audio is as long as one worker's whole-text synthesis within one pause per chunk, at the same loudness
(each chunk is levelled on its own in the parallel path, the whole text at once on one worker)."""

from __future__ import annotations

import io
import json

import pytest
import soundfile

from inference.loudness import integrated_loudness
from inference.text.chunking import split_chunks
from inference.text.samples import PARAGRAPH
from tests.conftest import DaemonProcess, http
from tts_ops.config import load_config

pytestmark = pytest.mark.slow

TEXT = PARAGRAPH[:150]


def synthesis_entry(daemon: DaemonProcess, request_id: str) -> dict | None:
    for path in sorted((daemon.workdir / "logs").glob("synthesis.log*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("request_id") == request_id:
                return record
    return None


def tts(daemon: DaemonProcess, request_id: str) -> tuple[float, float, dict]:
    """(duration s, integrated loudness LUFS, synthesis.log record) of TEXT as one non-streamed WAV."""
    code, headers, body = http("POST", daemon.base_url + "/tts", {"text": TEXT, "format": "wav"},
                               headers={"X-Request-ID": request_id})
    assert code == 200, body
    assert body[:4] == b"RIFF" and len(body) > 44
    samples, rate = soundfile.read(io.BytesIO(body), dtype="float32")
    record = daemon.wait_until(lambda: synthesis_entry(daemon, request_id), 10, what="the synthesis.log line")
    return float(headers["X-Audio-Duration"]), integrated_loudness(samples, rate), record


def workers_total(daemon: DaemonProcess) -> int:
    code, _, body = http("GET", daemon.base_url + "/ready")
    return json.loads(body)["workers"]["total"]


def test_long_text_uses_both_idle_workers_and_matches_one_worker_in_length(start_daemon):
    daemon = start_daemon(workers=2)
    config = load_config(env={})
    chunking = config.engines.fastspeech2_baker
    chunks = split_chunks(TEXT, chunking.max_chunk_chars)
    assert len(chunks) >= 3
    assert config.audio.loudness_lufs is not None  # control: the daemon levels its answers

    parallel_s, parallel_lufs, record = tts(daemon, "long-parallel")
    assert sorted(record["workers"]) == ["w1", "w2"], record

    code, _, body = http("POST", daemon.admin_url + "/admin/scale", {"workers": 1}, token=daemon.token)
    assert code == 200, body
    daemon.wait_until(lambda: workers_total(daemon) == 1, 30, what="the pool to shrink to one worker")
    single_s, single_lufs, record = tts(daemon, "long-single")
    assert "workers" not in record and record["worker"], record  # the whole text on one worker
    assert abs(parallel_s - single_s) <= chunking.pause_s * len(chunks), (parallel_s, single_s)
    assert abs(parallel_lufs - config.audio.loudness_lufs) <= 0.5, parallel_lufs
    assert abs(parallel_lufs - single_lufs) <= 0.5, (parallel_lufs, single_lufs)
