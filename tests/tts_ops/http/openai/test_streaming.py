"""The streaming pipeline over aiohttp's test server with the real synthesis service and a stand-in worker call
(no processes): order, parallelism, skipped chunks, errors before and after the first byte, client disconnects,
the cache, every format, SSE."""

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
import soundfile as sf

from inference.audio import encode
from tests.fakes.chunk_worker import BUSY, RATE, ChunkWorker, make_service, tone
from tests.fakes.stream_app import serve_stream
from tts_ops.cache import ResultCache
from tts_ops.config import CacheConfig, load_config
from tts_ops.service.chunk_pipeline import MAX_STREAM_PARALLELISM
from tts_ops.service.ogg import OggOpusJoiner, ogg_crc, opus_packet_samples
from tts_ops.storage.output_store import OutputStore
from tts_vocab import SynthesisJob

PAUSE_S = 0.25
SENTENCES = [f"这是第{n}句话，内容不算太短。" for n in "一二三四五六七八"]
TEXT = "".join(SENTENCES)


def stand_in(config, *, workers: int = 2, cache=None, output_store=None, **behaviour):
    """(the real service, its stand-in worker call) for SENTENCES; ``behaviour``: see ``ChunkWorker``."""
    worker = ChunkWorker(SENTENCES, **behaviour)
    return make_service(config, worker, workers=workers, cache=cache, output_store=output_store), worker


def synthesis_lines(caplog) -> list[dict]:
    """The synthesis.log entries the service wrote (``caplog`` at INFO for tts_ops.synthesis)."""
    return [r.synthesis for r in caplog.records if r.name == "tts_ops.synthesis"]


@pytest.fixture
async def memory_cache():
    cache = ResultCache.from_config(CacheConfig(enabled=True, prefix="test:"))
    await cache.start()
    yield cache
    await cache.close()


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


def make_config(tmp_path):
    return load_config(overrides={"paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
                                  "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")},
                                  "engines": {"fastspeech2_baker": {"pause_s": PAUSE_S, "max_chunk_chars": 20}}},
                       env={})


async def serve(service):
    return await serve_stream(service, lambda body: (
        SynthesisJob(text=body.get("text", TEXT), emotion="neutral", speed=1.0, format=body["format"]),
        body.get("sse", False)))


def expected_pcm(skip=()) -> np.ndarray:
    kept = [i for i in range(len(SENTENCES)) if i not in skip]
    parts = []
    for index in kept:
        parts.append(tone(index))
        if index != len(SENTENCES) - 1:
            parts.append(np.zeros(int(PAUSE_S * RATE), np.float32))
    return np.rint(np.concatenate(parts) * 32767).astype("<i2")


async def test_chunks_arrive_in_order_with_parallel_synthesis(config):
    # Later chunks finish first: the client must still get them in text order.
    service, worker = stand_in(config, workers=3, delays={i: 0.08 - 0.01 * i for i in range(8)})
    client = await serve(service)
    try:
        resp = await client.post("/s", json={"format": "pcm"})
        assert resp.status == 200 and resp.headers["Transfer-Encoding"] == "chunked"
        assert resp.headers["Content-Type"] == "audio/pcm" and resp.headers["X-Sample-Rate"] == "24000"
        assert resp.headers["X-Cache"] == "MISS" and resp.headers["X-Request-ID"]
        data = await resp.read()
    finally:
        await client.close()
    assert np.array_equal(np.frombuffer(data, "<i2"), expected_pcm())
    assert worker.max_running == 3
    assert [c.pause_after_s for c in worker.calls] == [PAUSE_S] * 7 + [0.0]
    assert all(c.chunk is True and c.format == "pcm" for c in worker.calls)


async def test_parallelism_is_capped(config):
    service, worker = stand_in(config, workers=16, delays={i: 0.05 for i in range(8)})
    client = await serve(service)
    try:
        assert (await client.post("/s", json={"format": "pcm"})).status == 200
    finally:
        await client.close()
    assert worker.max_running == MAX_STREAM_PARALLELISM


async def test_no_ready_worker_still_streams_one_chunk_at_a_time(config):
    service, worker = stand_in(config, workers=0)
    client = await serve(service)
    try:
        assert (await client.post("/s", json={"format": "pcm"})).status == 200
    finally:
        await client.close()
    assert worker.max_running == 1


async def test_wav_stream_header_then_cache_copy_with_real_sizes(config, memory_cache, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tts_ops.synthesis")
    store = OutputStore(tmp_path / "saved", enabled=True)
    service, worker = stand_in(config, cache=memory_cache, output_store=store)
    client = await serve(service)
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
    assert len(worker.calls) == len(SENTENCES)  # the HIT made no worker call
    duration = len(expected_pcm()) / RATE
    assert [(e["cache"], round(e["audio_s"], 2)) for e in synthesis_lines(caplog)] == [("MISS", round(duration, 2)),
                                                                                   ("HIT", round(duration, 2))]
    # A HIT is recorded (and saved) before its headers go out.
    saved = hit.headers["X-Output-URL"]
    assert re.fullmatch(r"/output/[^/]+\.wav", saved) and (tmp_path / "saved" / saved[len("/output/"):]).is_file()


@pytest.mark.parametrize("fmt, slack_s", [("mp3", 0.1), ("opus", 0.1), ("flac", 0.0), ("wav", 0.0)])
async def test_every_format_decodes_to_the_whole_text(config, fmt, slack_s):
    service, worker = stand_in(config)
    client = await serve(service)
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
    service, worker = stand_in(config, unspeakable={0, 3})
    client = await serve(service)
    try:
        data = await (await client.post("/s", json={"format": "pcm"})).read()
    finally:
        await client.close()
    assert np.array_equal(np.frombuffer(data, "<i2"), expected_pcm(skip={0, 3}))


async def test_all_unspeakable_is_400_before_any_byte(config):
    service, worker = stand_in(config, unspeakable=set(range(8)))
    client = await serve(service)
    try:
        resp = await client.post("/s", json={"format": "wav"})
        assert resp.status == 400 and "speakable" in (await resp.json())["error"]
    finally:
        await client.close()


async def test_error_before_first_byte_is_a_normal_error(config):
    service, worker = stand_in(config, fail_at=0)
    client = await serve(service)
    try:
        resp = await client.post("/s", json={"format": "mp3"})
        assert resp.status == 503 and resp.headers["Retry-After"] == "2"
        assert (await resp.json())["error"] == BUSY
    finally:
        await client.close()


async def test_only_the_first_chunk_is_subject_to_load_shedding(config):
    service, worker = stand_in(config, workers=3, unspeakable={0})
    client = await serve(service)
    try:
        resp = await client.post("/s", json={"format": "pcm"})
        assert resp.status == 200
        assert np.array_equal(np.frombuffer(await resp.read(), "<i2"), expected_pcm(skip={0}))
    finally:
        await client.close()
    # The first chunk runs alone; once a worker has taken it (even to find it unspeakable) the rest is admitted
    # work and still runs in parallel.
    assert worker.admitted[0] == (0, False)
    assert sorted(worker.admitted[1:]) == [(i, True) for i in range(1, len(SENTENCES))]
    assert worker.max_running == 3


async def test_shed_stream_starts_no_other_chunk(config):
    service, worker = stand_in(config, workers=4, fail_at=0)  # chunk 0 is shed: 503 "server is busy"
    client = await serve(service)
    try:
        assert (await client.post("/s", json={"format": "pcm"})).status == 503
    finally:
        await client.close()
    assert len(worker.calls) == 1 and service.totals["shed"] == 1


async def test_error_after_first_byte_aborts_the_connection(config):
    service, worker = stand_in(config, fail_at=5, delays={5: 0.2})
    client = await serve(service)
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
    service, worker = stand_in(config, workers=1, delays={i: 0.15 for i in range(8)})
    client = await serve(service)
    try:
        resp = await client.post("/s", json={"format": "pcm"})
        await resp.content.readany()
        resp.close()  # drop the connection mid-stream
        # The production logs its cancellation once its chunk jobs are cancelled; nothing can start after that.
        await until(lambda: "stream cancelled" in caplog.text and worker.running == 0, what="the cancellation")
        calls = len(worker.calls)
    finally:
        await client.close()
    assert calls == len(worker.calls) < len(SENTENCES)
    assert len(worker.finished) < len(SENTENCES) and worker.cancelled >= 1


async def test_sse_events(config):
    service, worker = stand_in(config)
    client = await serve(service)
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
    class Broken(ResultCache):
        async def get(self, key):
            raise ConnectionError("redis down")

        async def put(self, key, audio):
            raise ConnectionError("redis down")

    cache = Broken.from_config(CacheConfig(enabled=True, prefix="test:"))
    service, worker = stand_in(config, cache=cache)
    client = await serve(service)
    try:
        for _ in range(2):  # the second one too: nothing was stored
            resp = await client.post("/s", json={"format": "pcm"})
            assert resp.status == 200 and resp.headers["X-Cache"] == "MISS"
            assert np.array_equal(np.frombuffer(await resp.read(), "<i2"), expected_pcm())
    finally:
        await client.close()
    assert len(worker.calls) == 2 * len(SENTENCES)


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
