"""A long non-streamed text over idle workers (daemon process, event loop): its chunks run in parallel on workers
idle at that moment and are joined in text order, through the same pipeline and assemblers streams use.

Fairness: a chunk beside others of the same request starts only on a worker ``Balancer.reserve`` hands out, i.e.
an idle one while no other request is queued; it never queues. One chunk at a time may instead go through the
ordinary queue (the request's own lane, ``admitted``: at the head, like the rest of any admitted request), so a
request that finds no spare worker is served one chunk after another, never shed half-way. When requests queue
up while it runs, it narrows back to that one lane and its extra workers go to them as their chunks finish.

Order: nothing is sent before the last chunk is in, so the chunks start longest first (``longest_first``) and are
joined in text order; the short ones fill in at the end and the workers finish close together (measured on 150
characters, 6 chunks, 2 workers: the gap between the two workers' last ends went from 0.37 s to 0.09 s, p50).
Boundaries, pauses and per-chunk loudness are a stream's: only the order of work changes.

``SynthesisService._synthesize_uncached`` takes this path when the text has several chunks and at least two
workers are idle with nobody queued (``worth_parallel``); otherwise the whole text goes to one worker.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from tts_ops.cache import CachedAudio
from tts_ops.service import stream_production
from tts_ops.service.assemblers import ASSEMBLERS, ChunkAudio
from tts_ops.service.chunk_pipeline import ChunkPipeline
from tts_ops.upstream.balancer import Balancer
from tts_ops.upstream.client import Synthesis, WorkerLender
from tts_ops.upstream.reserved import ReservedLender
from tts_vocab import SynthesisJob

__all__ = ["LaneRunner", "LongTextPipeline", "longest_first", "spoken_weight", "synthesize_parallel",
           "worth_parallel"]


class LaneRunner(Protocol):
    """What this needs of the synthesis service: a job dispatched, optionally through a given lender
    (``SynthesisService.run_job``)."""

    async def run_job(self, job: SynthesisJob, *, admitted: bool = False,
                      lender: WorkerLender[Any] | None = None) -> Synthesis: ...


def worth_parallel(balancer: Balancer[Any], chunks: list[str]) -> bool:
    """Several chunks and at least two idle workers nobody waits for."""
    return len(chunks) > 1 and balancer.idle_spare() >= 2


def spoken_weight(chunk: str) -> int:
    """A chunk's synthesis cost in comparable units: its letters, digits and CJK characters (worker time grows
    about linearly with them; punctuation and spaces cost next to nothing)."""
    return sum(1 for char in chunk if char.isalnum())


def longest_first(chunks: list[str]) -> list[int]:
    """Chunk indices by decreasing ``spoken_weight``, text order among equals: the order of the classic
    longest-processing-time schedule, which keeps the last worker to finish close to the average."""
    return sorted(range(len(chunks)), key=lambda index: (-spoken_weight(chunks[index]), index))


class LongTextPipeline(ChunkPipeline):
    """A ``ChunkPipeline`` whose extra chunks start only on reserved idle workers (see the module docstring).
    ``workers``: the ids of the workers that synthesized its chunks, in order of first use."""

    def __init__(self, runner: LaneRunner, balancer: Balancer[Any], job: SynthesisJob, chunks: list[str],
                 wire_format: str, pause_s: float, parallelism: int) -> None:
        super().__init__(runner, job, chunks, wire_format, pause_s, parallelism)
        self.lane_runner = runner
        self.balancer = balancer
        self._lenders: dict[int, ReservedLender[Any]] = {}
        self.workers: list[str] = []
        # Longest first (the chunks are known up front and nothing is sent before the last one is in): the short
        # ones fill in at the end, so the workers finish close together instead of one waiting on a long tail.
        self.start_order = longest_first(chunks)
        self.max_ahead = len(chunks)  # the whole answer is held anyway: nothing to bound

    def _may_start(self, running: int) -> bool:
        if running >= self.parallelism:
            return False
        worker = self.balancer.reserve()
        if worker is not None:
            self._lenders[self.upcoming] = ReservedLender(self.balancer, worker)
            self.admitted = True  # a worker is ours: nothing left to shed
            return True
        return running == 0  # the request's own lane, through the queue

    async def _synthesize(self, index: int, admitted: bool) -> Synthesis:
        lender = self._lenders.get(index)
        return await self.lane_runner.run_job(self._chunk_job(index), admitted=admitted or lender is not None,
                                              lender=lender)

    async def next(self) -> ChunkAudio | None:
        chunk = await super().next()
        if chunk is not None and chunk.worker_id not in self.workers:
            self.workers.append(chunk.worker_id)
        return chunk

    def close(self) -> int:
        cancelled = super().close()
        for lender in self._lenders.values():
            lender.discard()  # a reservation whose chunk never started goes back to the pool
        self._lenders.clear()
        return cancelled


async def synthesize_parallel(runner: LaneRunner, balancer: Balancer[Any], job: SynthesisJob, chunks: list[str],
                              pause_s: float, parallelism: int, request_id: str | None = None) -> CachedAudio:
    """The whole audio of ``job`` from its ``chunks`` synthesized over idle workers and joined in order, as the
    cache stores a whole synthesis (meta ``workers`` names every worker used). Raises HttpError."""
    plan = stream_production.StreamPlan(job, chunks, pause_s, parallelism, request_id)
    pipeline = LongTextPipeline(runner, balancer, job, chunks, ASSEMBLERS[job.format].wire_format, pause_s,
                                parallelism)
    audio = await stream_production.produce(runner, plan, _discard, pipeline)
    meta = {**audio.meta, "workers": list(pipeline.workers)}
    meta.pop("streamed", None)
    return replace(audio, meta=meta)


def _discard(item: stream_production.StreamItem) -> None:
    """Nothing is sent before the whole file is assembled (not a stream)."""
