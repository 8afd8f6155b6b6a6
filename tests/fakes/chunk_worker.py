"""A stand-in for the worker call of the real ``SynthesisService`` (its ``dispatch``, normally
``tts_ops.upstream.client.synthesize``): one tone per sentence of a known text, with the timing and the failures a
streaming test asks for, and a record of every call. The service, its cache key, its error mapping, recording and
counters are the real ones; only the processes are missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from inference.audio import encode
from tests.fakes.pool import S, StandInSupervisor, StandInWorker
from tts_ops.cache import ResultCache
from tts_ops.config import Config
from tts_ops.service.synthesis import SynthesisService
from tts_ops.storage.output_store import OutputStore
from tts_ops.upstream.balancer import Balancer, Overloaded
from tts_ops.upstream.client import Synthesis, WorkerRejected
from tts_vocab import SynthesisJob, SynthesisReply

RATE = 24000
#: The worker's 400 for a chunk with nothing to say (the pipeline skips such a chunk).
UNSPEAKABLE = "text contains nothing speakable after normalisation"
#: Overloaded's message, answered 503 with the configured Retry-After.
BUSY = "server is busy"


def tone(index: int) -> np.ndarray:
    seconds = 0.2 + 0.05 * index
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * index) * t)).astype(np.float32)


class ChunkWorker:
    """``sentences[i]`` is answered with ``tone(i)`` (plus the job's pause) by worker ``w1``/``w2`` alternately.
    ``delays``: seconds per index; ``gates``: index -> Event the call waits for; ``fail_at``: that index sheds
    (503); ``unspeakable``: those indexes are the worker's 400."""

    def __init__(self, sentences: Sequence[str], *, delays: dict[int, float] | None = None, unspeakable=(),
                 fail_at: int | None = None, gates: dict[int, asyncio.Event] | None = None) -> None:
        self.sentences = list(sentences)
        self.delays = delays or {}
        self.unspeakable = set(unspeakable)
        self.fail_at = fail_at
        self.gates = gates or {}
        self.calls: list[SynthesisJob] = []
        self.admitted: list[tuple[int, bool]] = []
        self.finished: list[int] = []
        self.running = 0
        self.max_running = 0
        self.cancelled = 0

    async def __call__(self, balancer: Balancer, job: SynthesisJob, *, admitted: bool = False) -> Synthesis:
        index = self.sentences.index(job.text)
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
            raise Overloaded(BUSY)
        if index in self.unspeakable:
            raise WorkerRejected(400, UNSPEAKABLE)
        samples = tone(index)
        if job.pause_after_s:
            samples = np.concatenate([samples, np.zeros(int(job.pause_after_s * RATE), np.float32)])
        audio = encode(samples, RATE, job.format, job.sample_rate)
        self.finished.append(index)
        reply = SynthesisReply(audio.sample_rate, audio.duration_s, 0.0, engine="fastspeech2-baker")
        return Synthesis(audio.data, audio.content_type, f"w{index % 2 + 1}", reply, 1)


def make_service(config: Config, worker: ChunkWorker, *, workers: int = 2, cache: ResultCache | None = None,
                 output_store: OutputStore | None = None) -> SynthesisService:
    """The real service over ``workers`` READY stand-in worker handles (which report a model version, so a cache
    key exists), a real balancer, and ``worker`` as its worker call."""
    supervisor = StandInSupervisor([StandInWorker(f"w{n}", S.READY, pid=n) for n in range(1, workers + 1)])
    return SynthesisService(config, supervisor, Balancer(supervisor, config.server.queue_limit), cache,
                            output_store=output_store, dispatch=worker)
