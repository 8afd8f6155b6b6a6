"""The streaming pipeline over aiohttp's test server with a stand-in front end (no workers): order, parallelism,
skipped chunks, errors before and after the first byte, client disconnects, the cache, every format, SSE."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import re

import aiohttp
import numpy as np
import pytest

from tts_vocab import SynthesisJob, SynthesisReply
import soundfile as sf

from inference.audio import encode
from tts_ops.cache.audio import CachedAudio
from tts_ops.cache.singleflight import StreamFlights
from tts_ops.config import load_config
from tts_ops.upstream.client import Synthesis
from tts_ops.http.errors import RequestError, ServiceError
from tts_ops.service.ogg import OggOpusJoiner, ogg_crc, opus_packet_samples
from tts_ops.service.chunk_pipeline import MAX_STREAM_PARALLELISM

from tests.fakes.stream_app import serve_stream

RATE = 24000
PAUSE_S = 0.25
SENTENCES = [f"这是第{n}句话，内容不算太短。" for n in "一二三四五六七八"]
TEXT = "".join(SENTENCES)


def tone(index: int) -> np.ndarray:
    seconds = 0.2 + 0.05 * index
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * index) * t)).astype(np.float32)


class StandInSupervisor:
    def __init__(self, ready: int) -> None:
        self.ready = ready

    def ready_workers(self):
        return [object()] * self.ready


class MemoryCache:
    def __init__(self) -> None:
        self.items: dict[str, CachedAudio] = {}

    async def get(self, key):
        return self.items.get(key)

    async def put(self, key, audio):
        self.items[key] = audio
        return True

    def join_stream(self, key, produce):
        # ResultCache's contract without the sharing (tested with the real cache elsewhere): store when complete.
        return StreamFlights().join(key, produce, after=lambda audio: self.put(key, audio))


class StandIn:
    """What stream_job needs of FrontEnd: config, supervisor, run_job, and optionally cache/cache_key."""

    def __init__(self, config, *, workers: int = 2, delays=None, unspeakable=(), fail_at=None, cache=None,
                 gates=None) -> None:
        self.config = config
        self.supervisor = StandInSupervisor(workers)
        self.accepting = True
        self.delays = delays or {}
        self.unspeakable = set(unspeakable)
        self.fail_at = fail_at
        self.calls: list[dict] = []
        self.finished: list[int] = []
        self.running = 0
        self.max_running = 0
        self.recorded: list[tuple[str, float, str | None]] = []
        self.shared: list[bool] = []
        self.admitted: list[tuple[int, bool]] = []
        self.cancelled = 0
        # index -> asyncio.Event: that chunk's job is held until the test sets it.
        self.gates: dict[int, asyncio.Event] = gates or {}
        if cache is not None:
            self.cache = cache

    async def record(self, request, job, audio, cache, worker, *, shared=False):
        self.recorded.append((cache, audio.duration_s, worker))
        self.shared.append(shared)
        return {"X-Output-URL": "/output/x.wav"}

    def cache_key(self, job):
        return json.dumps(job.to_wire(), sort_keys=True, ensure_ascii=False)

    async def run_job(self, job, *, admitted=False):
        index = next(i for i, s in enumerate(SENTENCES) if s == job.text)
        self.calls.append(job)
        self.admitted.append((index, admitted))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delays.get(index, 0.01))
            if index in self.gates:
                await self.gates[index].wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        if index == self.fail_at:
            raise ServiceError(503, "server is busy", headers={"Retry-After": "2"})
        if index in self.unspeakable:
            raise RequestError(400, "text contains nothing speakable after normalisation")
        samples = tone(index)
        if job.pause_after_s:
            samples = np.concatenate([samples, np.zeros(int(job.pause_after_s * RATE), np.float32)])
        audio = encode(samples, RATE, job.format, job.sample_rate)
        self.finished.append(index)
        return Synthesis(audio.data, audio.content_type, f"w{index % 2 + 1}",
                         SynthesisReply(audio.sample_rate, audio.duration_s, 0.0, engine="fastspeech2-baker"), 1)


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


def make_config(tmp_path):
    return load_config(overrides={"paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
                                  "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")},
                                  "engines": {"fastspeech2_baker": {"pause_s": PAUSE_S, "max_chunk_chars": 20}}},
                       env={})


async def serve(frontend):
    return await serve_stream(frontend, lambda body: (
        SynthesisJob(text=body.get("text", TEXT), emotion="neutral", speed=1.0, format=body["format"]),
        body.get("sse", False)))


def expected_pcm(skip=()) -> np.ndarray:
    kept = [i for i in range(len(SENTENCES)) if i not in skip]
    parts = []
    for n, index in enumerate(kept):
        parts.append(tone(index))
        if index != len(SENTENCES) - 1:
            parts.append(np.zeros(int(PAUSE_S * RATE), np.float32))
    return np.rint(np.concatenate(parts) * 32767).astype("<i2")


async def test_chunks_arrive_in_order_with_parallel_synthesis(config):
    # Later chunks finish first: the client must still get them in text order.
    frontend = StandIn(config, workers=3, delays={i: 0.08 - 0.01 * i for i in range(8)})
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": "pcm"})
        assert resp.status == 200 and resp.headers["Transfer-Encoding"] == "chunked"
        assert resp.headers["Content-Type"] == "audio/pcm" and resp.headers["X-Sample-Rate"] == "24000"
        assert resp.headers["X-Cache"] == "MISS" and resp.headers["X-Request-ID"]
        data = await resp.read()
    finally:
        await client.close()
    assert np.array_equal(np.frombuffer(data, "<i2"), expected_pcm())
    assert frontend.max_running == 3
    assert [c.pause_after_s for c in frontend.calls] == [PAUSE_S] * 7 + [0.0]
    assert all(c.chunk is True and c.format == "pcm" for c in frontend.calls)


async def test_parallelism_is_capped(config):
    frontend = StandIn(config, workers=16, delays={i: 0.05 for i in range(8)})
    client = await serve(frontend)
    try:
        assert (await client.post("/s", json={"format": "pcm"})).status == 200
    finally:
        await client.close()
    assert frontend.max_running == MAX_STREAM_PARALLELISM


async def test_no_ready_worker_still_streams_one_chunk_at_a_time(config):
    frontend = StandIn(config, workers=0)
    client = await serve(frontend)
    try:
        assert (await client.post("/s", json={"format": "pcm"})).status == 200
    finally:
        await client.close()
    assert frontend.max_running == 1


async def test_wav_stream_header_then_cache_copy_with_real_sizes(config):
    cache = MemoryCache()
    frontend = StandIn(config, cache=cache)
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": "wav"})
        streamed = await resp.read()
        assert resp.headers["X-Cache"] == "MISS"
        hit = await client.post("/s", json={"format": "wav"})
        cached = await hit.read()
        assert hit.headers["X-Cache"] == "HIT" and hit.headers["Content-Type"] == "audio/wav"
    finally:
        await client.close()
    assert streamed[4:8] == b"\xff\xff\xff\xff" and streamed[40:44] == b"\xff\xff\xff\xff"
    assert int.from_bytes(cached[4:8], "little") == len(cached) - 8
    assert int.from_bytes(cached[40:44], "little") == len(cached) - 44
    assert cached[44:] == streamed[44:]
    samples, rate = sf.read(io.BytesIO(cached), dtype="int16")
    assert rate == RATE and np.array_equal(samples, expected_pcm())
    assert len(frontend.calls) == len(SENTENCES)  # the HIT made no worker call
    duration = len(expected_pcm()) / RATE
    assert [(c, round(d, 2)) for c, d, _ in frontend.recorded] == [("MISS", round(duration, 2)),
                                                                   ("HIT", round(duration, 2))]
    assert hit.headers["X-Output-URL"] == "/output/x.wav"  # a HIT is recorded before its headers go out


@pytest.mark.parametrize("fmt, slack_s", [("mp3", 0.1), ("opus", 0.1), ("flac", 0.0), ("wav", 0.0)])
async def test_every_format_decodes_to_the_whole_text(config, fmt, slack_s):
    frontend = StandIn(config)
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": fmt})
        data = await resp.read()
    finally:
        await client.close()
    assert resp.status == 200
    samples, rate = sf.read(io.BytesIO(data))
    want = len(expected_pcm()) / RATE
    assert rate == RATE and want - 0.01 <= len(samples) / rate <= want + slack_s + 0.01, (len(samples) / rate, want)
    if fmt == "flac":
        assert resp.headers.get("Content-Length") == str(len(data))  # buffered, sent once
    else:
        assert resp.headers["Transfer-Encoding"] == "chunked"


async def test_unspeakable_chunks_are_skipped(config):
    frontend = StandIn(config, unspeakable={0, 3})
    client = await serve(frontend)
    try:
        data = await (await client.post("/s", json={"format": "pcm"})).read()
    finally:
        await client.close()
    assert np.array_equal(np.frombuffer(data, "<i2"), expected_pcm(skip={0, 3}))


async def test_all_unspeakable_is_400_before_any_byte(config):
    frontend = StandIn(config, unspeakable=set(range(8)))
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": "wav"})
        assert resp.status == 400 and "speakable" in (await resp.json())["error"]
    finally:
        await client.close()


async def test_error_before_first_byte_is_a_normal_error(config):
    frontend = StandIn(config, fail_at=0)
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": "mp3"})
        assert resp.status == 503 and resp.headers["Retry-After"] == "2"
        assert (await resp.json())["error"] == "server is busy"
    finally:
        await client.close()


async def test_only_the_first_chunk_is_subject_to_load_shedding(config):
    frontend = StandIn(config, workers=3, unspeakable={0})
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": "pcm"})
        assert resp.status == 200
        assert np.array_equal(np.frombuffer(await resp.read(), "<i2"), expected_pcm(skip={0}))
    finally:
        await client.close()
    # The first chunk runs alone; once a worker has taken it (even to find it unspeakable) the rest is admitted
    # work and still runs in parallel.
    assert frontend.admitted[0] == (0, False)
    assert sorted(frontend.admitted[1:]) == [(i, True) for i in range(1, len(SENTENCES))]
    assert frontend.max_running == 3


async def test_shed_stream_starts_no_other_chunk(config):
    frontend = StandIn(config, workers=4, fail_at=0)  # chunk 0 answers 503 "server is busy"
    client = await serve(frontend)
    try:
        assert (await client.post("/s", json={"format": "pcm"})).status == 503
    finally:
        await client.close()
    assert len(frontend.calls) == 1


async def test_error_after_first_byte_aborts_the_connection(config):
    frontend = StandIn(config, fail_at=5, delays={5: 0.2})
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": "pcm"})
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    finally:
        await client.close()


async def until(predicate, timeout: float = 20, what: str = "condition"):
    """Poll ``predicate`` until true (a generous deadline, never a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_client_disconnect_cancels_remaining_chunks(config, caplog):
    caplog.set_level(logging.INFO, logger="tts_ops.stream")
    frontend = StandIn(config, workers=1, delays={i: 0.15 for i in range(8)})
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": "pcm"})
        await resp.content.readany()
        resp.close()  # drop the connection mid-stream
        # The production logs its cancellation once its chunk jobs are cancelled; nothing can start after that.
        await until(lambda: "stream cancelled" in caplog.text and frontend.running == 0, what="the cancellation")
        calls = len(frontend.calls)
    finally:
        await client.close()
    assert calls == len(frontend.calls) < len(SENTENCES)
    assert len(frontend.finished) < len(SENTENCES) and frontend.cancelled >= 1


async def test_sse_events(config):
    frontend = StandIn(config)
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": "pcm", "sse": True})
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = (await resp.read()).decode()
    finally:
        await client.close()
    events = [json.loads(m) for m in re.findall(r"^data: (.*)$", text, re.M)]
    assert re.findall(r"^event: (.*)$", text, re.M) == [e["type"] for e in events]
    deltas, done = events[:-1], events[-1]
    assert all(e["type"] == "speech.audio.delta" for e in deltas) and len(deltas) == len(SENTENCES)
    pcm = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert np.array_equal(np.frombuffer(pcm, "<i2"), expected_pcm())
    usage = done["usage"]
    assert done["type"] == "speech.audio.done" and usage["input_tokens"] == len(TEXT)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > len(TEXT)


async def test_cache_failures_are_misses(config):
    class Broken(MemoryCache):
        async def get(self, key):
            raise ConnectionError("redis down")

        async def put(self, key, audio):
            raise ConnectionError("redis down")

    frontend = StandIn(config, cache=Broken())
    client = await serve(frontend)
    try:
        resp = await client.post("/s", json={"format": "pcm"})
        assert resp.status == 200 and resp.headers["X-Cache"] == "MISS"
        assert np.array_equal(np.frombuffer(await resp.read(), "<i2"), expected_pcm())
    finally:
        await client.close()


# --- Ogg/Opus joining ------------------------------------------------------------------------------------------


def test_ogg_crc_matches_a_libogg_page():
    page = encode(tone(0), RATE, "opus").data
    header_len = 27 + page[26]
    body_len = sum(page[27:header_len])
    first = bytearray(page[:header_len + body_len])
    crc = int.from_bytes(first[22:26], "little")
    first[22:26] = b"\0\0\0\0"
    assert ogg_crc(bytes(first)) == crc


def test_opus_packet_samples():
    assert opus_packet_samples(bytes([0b11111000])) == 960      # CELT 20 ms, one frame
    assert opus_packet_samples(bytes([0b11111001])) == 1920     # two frames
    assert opus_packet_samples(bytes([0b11111011, 3])) == 2880  # code 3, three frames
    assert opus_packet_samples(bytes([0b00001000])) == 960      # SILK 20 ms


def test_joined_opus_is_one_logical_stream():
    joiner = OggOpusJoiner()
    parts = [tone(i) for i in range(3)]
    data = b"".join(joiner.add(encode(p, RATE, "opus").data) for p in parts) + joiner.finish()
    serials = {data[m.start() + 14:m.start() + 18] for m in re.finditer(b"OggS", data)}
    assert len(serials) == 1 and data.count(b"OpusHead") == 1
    samples, rate = sf.read(io.BytesIO(data))
    want = sum(len(p) for p in parts)
    assert rate == RATE and want <= len(samples) <= want + 0.03 * RATE
