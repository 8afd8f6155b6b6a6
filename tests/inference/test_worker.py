"""Acceptance tests of the inference worker: real ``python -m inference.worker`` processes on a Unix socket.

Each worker loads the real bundled model from the machine's model store (or a corrupted copy of it). HTTP goes
through ``http.client`` over a connected AF_UNIX socket, one connection per request, as the supervisor does.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from multidict import CIMultiDict

from inference.audio import FORMATS
from inference.engines.fastspeech2 import VOCODER_FILE
from inference.errors import EXIT_BOOT_FAILURE, EXIT_OK
from tts_vocab import SynthesisReply
from tts_vocab import headers as h

RATE = 24000
SENTENCE = "今天天气真好，适合出去散步。"
PARAGRAPH = (
    "春天来了，公园里的花都开了。孩子们在草地上奔跑，老人们坐在长椅上聊天，空气里满是青草的味道。"
    "远处的湖面上，几只小船慢慢地划过，留下一道道细细的波纹。我们沿着湖边的小路一直往前走，一边欣赏风景，"
    "一边谈论最近发生的事情。天气预报说明天会下雨，所以大家都想趁今天出来走走！你觉得这样的日子是不是很美好？"
)


def long_text(chars: int) -> str:
    return (PARAGRAPH * (chars // len(PARAGRAPH) + 1))[: chars - 1] + "。"


# -- HTTP over a Unix socket --------------------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def call(socket_path: str, method: str, path: str, body: Any = None, timeout: float = 60) -> Reply:
    """One request; raises OSError when nothing listens on the socket yet."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    conn = UnixHTTPConnection(socket_path, timeout)
    start = time.monotonic()
    try:
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        payload = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload, time.monotonic() - start)
    finally:
        conn.close()


# -- worker processes ---------------------------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    socket: str
    workdir: Path
    log_path: Path  # the worker's stderr
    boot_observations: list[tuple[str, Any]] = field(default_factory=list)  # ("no-socket"|status, body) in order

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self, timeout: float = 5) -> Reply:
        return call(self.socket, "GET", "/health", timeout=timeout)

    def synthesize(self, body: Any, timeout: float = 120) -> Reply:
        return call(self.socket, "POST", "/synthesize", body, timeout=timeout)

    def wait_ready(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode} before ready:\n{self.log()[-3000:]}")
            try:
                reply = self.health(timeout=2)
            except (FileNotFoundError, ConnectionRefusedError):
                self.boot_observations.append(("no-socket", None))
            else:
                body = reply.json()
                self.boot_observations.append((reply.status, body))
                if reply.status == 200:
                    return body
            time.sleep(0.02)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_worker(store_dir: Path, *args: str) -> WorkerProcess:
    # pytest's tmp_path can exceed the 108-byte limit of a Unix socket path; a short dir in /tmp cannot.
    workdir = Path(tempfile.mkdtemp(prefix="ttsw-", dir="/tmp"))
    sock = str(workdir / "w.sock")
    log_path = workdir / "stderr.log"  # the worker logs to stderr only
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTS_OPS_")}
    env["TTS_OPS_MODEL_DIR"] = str(store_dir)
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inference.worker", "--socket", sock, "--store-dir", str(store_dir), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file, env=env, cwd=workdir,
        )
    return WorkerProcess(proc, sock, workdir, log_path)


@contextlib.contextmanager
def ready_worker(store_dir: Path, *args: str) -> Iterator[WorkerProcess]:
    """A worker started with ``args`` and READY; stopped and its directory removed on exit."""
    proc = start_worker(store_dir, *args)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()
        shutil.rmtree(proc.workdir, ignore_errors=True)


@pytest.fixture
def spawn(model_store_dir):
    """Factory for workers that are stopped and cleaned up after the test."""
    started: list[WorkerProcess] = []

    def factory(*args: str, store_dir: Path | None = None) -> WorkerProcess:
        worker = start_worker(store_dir or model_store_dir, *args)
        started.append(worker)
        return worker

    yield factory
    for worker in started:
        worker.stop()
        shutil.rmtree(worker.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def worker(model_store_dir):
    """One ready worker shared by the request tests; its boot was watched from the first instant."""
    with ready_worker(model_store_dir) as proc:
        yield proc


# -- health -------------------------------------------------------------------------------------------------------


def test_health_goes_from_loading_to_ready(worker):
    observations = worker.boot_observations
    assert observations and observations[-1][0] == 200
    for status, body in observations[:-1]:
        # Before ready the worker is either not yet listening or says it is loading, with a 503.
        assert status == "no-socket" or (status == 503 and body["state"] == "loading"), (status, body)
    ready = observations[-1][1]
    assert ready["state"] == "ready"
    assert ready["engine"] == "fastspeech2-baker"
    assert ready["model_version"] not in (None, "", "unknown")
    assert ready["pid"] == worker.proc.pid
    assert ready["requests_served"] == 0
    assert ready["busy"] is False
    assert ready["sample_rate"] == RATE
    assert ready["load_s"] > 0 and ready["warmup_s"] > 0
    # WeTextProcessing's own INFO handler is kept quiet (it used to print every FST path twice).
    assert "WETEXT" not in worker.log() and "found existing fst" not in worker.log()


def test_requests_served_counts_successes(worker):
    before = worker.health().json()["requests_served"]
    assert worker.synthesize({"text": "你好。"}).status == 200
    assert worker.synthesize({"text": ""}).status == 400
    assert worker.health().json()["requests_served"] == before + 1


# -- synthesis ----------------------------------------------------------------------------------------------------


def decode(reply: Reply, fmt: str) -> tuple[np.ndarray, int]:
    if fmt == "pcm":
        return np.frombuffer(reply.body, dtype="<i2").astype(np.float32) / 32768.0, int(reply.headers["x-sample-rate"])
    samples, rate = sf.read(io.BytesIO(reply.body), dtype="float32")
    return samples, rate


@pytest.mark.parametrize("fmt", ["wav", "flac", "opus", "mp3", "pcm"])
def test_synthesize_every_format(worker, fmt):
    reply = worker.synthesize({"text": SENTENCE, "format": fmt, "emotion": "happy"})
    assert reply.status == 200, reply.body[:500]
    assert reply.headers["content-type"] == FORMATS[fmt].content_type
    assert int(reply.headers["x-sample-rate"]) == RATE
    audio_s = float(reply.headers["x-audio-duration"])
    assert 1.5 <= audio_s <= 5.0
    assert float(reply.headers["x-synthesis-time"]) > 0   # reported (speed is measured in bench/, not here)
    assert reply.headers["x-engine"] == "fastspeech2-baker"
    assert int(reply.headers["x-worker-pid"]) == worker.proc.pid

    samples, rate = decode(reply, fmt)
    assert rate == RATE
    assert samples.ndim == 1
    # Lossy codecs pad a few frames (encoder delay); lossless ones match to the sample.
    assert abs(samples.size / rate - audio_s) <= (0.1 if fmt in ("opus", "mp3") else 0.002)
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence


def test_synthesize_resamples_on_request(worker):
    reply = worker.synthesize({"text": "你好。", "format": "wav", "sample_rate": 16000, "speed": 1.5})
    assert reply.status == 200
    samples, rate = decode(reply, "wav")
    assert rate == 16000 == int(reply.headers["x-sample-rate"])


@pytest.mark.parametrize(
    "body, named",
    [
        (b"{not json", "JSON"),
        (b"\xff\xfe garbage", "JSON"),
        ([1, 2, 3], "JSON object"),
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": 42}, "text"),
        ({"text": SENTENCE, "emotion": "bored"}, "bored"),
        ({"text": SENTENCE, "format": "aac"}, "aac"),
        ({"text": SENTENCE, "speed": 9}, "speed"),
        ({"text": SENTENCE, "speed": True}, "speed"),
        ({"text": SENTENCE, "sample_rate": 1000}, "sample_rate"),
        ({"text": SENTENCE, "voice": "xiaoming"}, "xiaoming"),
        ({"text": "😀😀。"}, "nothing speakable"),
        (b"[" * 60000, "JSON"),                                  # nested past Python's recursion limit
        ({"text": SENTENCE, "chunk": "false"}, "chunk"),          # bool("false") would be True
    ],
)
def test_bad_requests_get_400_json(worker, body, named):
    reply = worker.synthesize(body)
    assert reply.status == 400, reply.body[:300]
    assert reply.headers["content-type"].startswith("application/json")
    assert named in reply.json()["error"]


def test_oversized_body_gets_413_json(worker):
    reply = worker.synthesize(b'{"text": "' + b"a" * (2 << 20) + b'"}')
    assert reply.status == 413 and reply.headers["content-type"].startswith("application/json")
    assert "larger than" in reply.json()["error"]


def test_health_answers_fast_during_long_synthesis(worker):
    result: dict[str, Reply] = {}
    thread = threading.Thread(target=lambda: result.setdefault("reply", worker.synthesize({"text": long_text(1000)})))
    thread.start()
    probes: list[Reply] = []
    while thread.is_alive():
        probes.append(worker.health(timeout=5))
        time.sleep(0.05)
    thread.join()

    reply = result["reply"]
    assert reply.status == 200, reply.body[:300]
    bodies = [probe.json() for probe in probes]
    assert all(probe.status == 200 and body["state"] == "ready" for probe, body in zip(probes, bodies, strict=True))
    # Several probes answered *while* the synthesis ran (a health check queued behind it would only ever see
    # busy=False, after it finished).
    assert sum(body["busy"] for body in bodies) >= 3
    assert worker.health().json()["busy"] is False


# -- boot failures ------------------------------------------------------------------------------------------------


def test_corrupt_model_store_exits_with_boot_failure(spawn, model_store_dir, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(model_store_dir / "fastspeech2-baker", store / "fastspeech2-baker")
    vocoder = store / "fastspeech2-baker" / VOCODER_FILE
    data = bytearray(vocoder.read_bytes())
    for index in range(0, len(data), len(data) // 16):
        data[index] ^= 0xFF
    vocoder.write_bytes(bytes(data))

    worker = spawn(store_dir=store)
    assert worker.proc.wait(60) == EXIT_BOOT_FAILURE == 3
    log = worker.log()
    assert VOCODER_FILE in log and "checksum mismatch" in log, log[-2000:]
    assert "Traceback" not in log  # an expected failure gets one clear line, not a stack dump
    assert not Path(worker.socket).exists()


def test_unknown_engine_exits_with_boot_failure(spawn):
    worker = spawn("--engine", "tacotron9")
    assert worker.proc.wait(60) == EXIT_BOOT_FAILURE
    log = worker.log()
    assert "unknown engine 'tacotron9'" in log, log[-2000:]


# -- graceful stop ------------------------------------------------------------------------------------------------


def test_sigterm_finishes_the_synthesis_in_progress_then_exits_0(spawn):
    worker = spawn()
    worker.wait_ready()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["reply"] = worker.synthesize({"text": long_text(300), "format": "flac"})
        except Exception as exc:  # surfaced by the assertions below
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not worker.health().json()["busy"]:
        assert time.monotonic() < deadline, "synthesis never started"
        time.sleep(0.02)

    worker.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    draining = worker.health()
    assert (draining.status, draining.json()["state"]) == (503, "draining")
    assert worker.synthesize({"text": "你好。"}).status == 503  # no new work while draining

    thread.join(60)
    assert "error" not in result, result.get("error")
    reply = result["reply"]
    assert reply.status == 200, reply.body[:300]
    samples, rate = sf.read(io.BytesIO(reply.body), dtype="float32")
    assert rate == RATE and abs(samples.size / rate - float(reply.headers["x-audio-duration"])) < 0.002
    assert worker.proc.wait(30) == EXIT_OK
    assert not Path(worker.socket).exists()


# -- the phonemizer view and unreadable characters ------------------------------------------------------------


def test_phonemize_answers_the_view_and_is_not_a_served_synthesis(worker):
    before = worker.health().json()["requests_served"]
    reply = call(worker.socket, "POST", "/phonemize", {"text": "你好😀。"})
    assert reply.status == 200, reply.body[:300]
    view = reply.json()
    assert view["chunks"][0]["pinyin"] == ["ni2", "hao3"]
    assert view["skipped"] == [{"char": "😀", "code_point": "U+1F600"}]
    assert worker.health().json()["requests_served"] == before


@pytest.mark.parametrize("body, named", [({}, "'text' is required"), ({"text": "你好", "x": 1}, "unknown field"),
                                          ([], "JSON object"), (b"{", "JSON")])
def test_phonemize_rejects_bad_bodies_with_400_json(worker, body, named):
    reply = call(worker.socket, "POST", "/phonemize", body)
    assert reply.status == 400 and named in reply.json()["error"], reply.body[:300]


def test_unreadable_characters_are_named_once_each_and_bounded(worker):
    # 200 distinct unreadable code points (private use area) and repeats: the reply names each once, at most
    # MAX_SKIPPED of them plus how many more, so the header never nears HTTP's 8 KiB limit.
    from tts_vocab import SynthesisReply
    from tts_vocab.messages import MAX_SKIPPED

    unreadable = "".join(chr(0xE100 + i) for i in range(200))  # U+E000.. are the normaliser's own masks
    reply = worker.synthesize({"text": "你好。" + unreadable * 3 + "。世界😀😀。"})
    assert reply.status == 200, reply.body[:300]
    meta = SynthesisReply.from_headers({name.title(): value for name, value in reply.headers.items()})
    assert len(meta.skipped) == MAX_SKIPPED and meta.more_skipped == 201 - MAX_SKIPPED
    assert meta.skipped[0] == "U+E100" and len(reply.headers["x-skipped-chars"]) < 1024


# -- timestamps ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("job", [
    {"text": "今天天气真好，2024年。第二句话。", "format": "wav"},
    {"text": "流式的一块，后面有停顿。", "format": "pcm", "chunk": True, "pause_after_s": 0.25, "sample_rate": 16000},
])
def test_timed_jobs_get_their_timings_as_a_trailer(worker, job):
    reply = worker.synthesize({**job, "timestamps": True})
    assert reply.status == 200, reply.body[:300]
    parsed, audio = SynthesisReply.from_wire(CIMultiDict(reply.headers), reply.body)
    assert parsed.timings is not None and len(audio) < len(reply.body)
    samples, rate = decode(Reply(reply.status, reply.headers, audio, reply.seconds), job["format"])
    stamps = parsed.timings.chars
    assert "".join(t.text for t in stamps) == job["text"]
    assert abs(stamps[-1].end_s - samples.size / rate) <= 300 / RATE  # a chunk's pause included
    assert [w.text for w in parsed.timings.words][:2] in (["今天", "天气"], ["流式", "的"], ["今天天气", "真"])
    untimed = worker.synthesize(job)  # positive control: no trailer without the flag
    assert h.TIMINGS_BYTES.lower() not in untimed.headers
