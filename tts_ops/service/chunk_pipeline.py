"""The ordered, parallel chunk runner of a stream (daemon process, event loop): chunk jobs run ahead on several
workers and come back in text order. Only the first chunk is subject to load shedding; see ``tts_ops.http.streaming``
for the whole flow."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from tts_ops.config import Config
from tts_ops.service.assemblers import ChunkAudio
from tts_ops.service.errors import RequestError
from tts_ops.upstream.client import Synthesis
from tts_vocab import FORMATS, SynthesisJob

__all__ = ["ChunkPipeline", "JobRunner", "chunk_settings", "stream_parallelism", "MAX_STREAM_PARALLELISM",
           "MAX_CHUNKS_AHEAD"]

#: Most chunks of one stream synthesized at once (the lookahead window also never exceeds the READY workers).
MAX_STREAM_PARALLELISM = 4
#: Most finished chunks held in memory ahead of the one being sent.
MAX_CHUNKS_AHEAD = 8
_UNSPEAKABLE = "speakable"


class JobRunner(Protocol):
    """What the pipeline needs of the synthesis service: one job dispatched (``SynthesisService.run_job``)."""

    async def run_job(self, job: SynthesisJob, *, admitted: bool = False) -> Synthesis: ...


class ReadyPool(Protocol):
    def ready_workers(self) -> Sequence[object]: ...


def chunk_settings(config: Config) -> tuple[int, float]:
    """(max_chunk_chars, pause_s) of the configured engine: the same split the engine would make itself."""
    return config.engines.section(config.workers.engine).chunking()


def stream_parallelism(supervisor: ReadyPool) -> int:
    """Chunks of one stream synthesized at once: the READY workers, 1..MAX_STREAM_PARALLELISM."""
    return max(1, min(MAX_STREAM_PARALLELISM, len(supervisor.ready_workers())))


class ChunkPipeline:
    """Runs chunk jobs ahead in parallel and hands their results back in text order. ``next()`` returns a
    ``ChunkAudio``, None for a skipped (unspeakable) chunk, or raises the chunk's HttpError; ``close()`` cancels
    whatever is still queued or running (always call it)."""

    def __init__(self, runner: JobRunner, job: SynthesisJob, chunks: list[str], wire_format: str, pause_s: float,
                 parallelism: int) -> None:
        self.runner = runner
        self.job = job
        self.chunks = chunks
        self.wire_format = wire_format
        self.pause_s = pause_s
        self.parallelism = max(1, parallelism)
        self.tasks: list[asyncio.Task[ChunkAudio | None]] = []
        self.consumed = 0
        self.skipped = 0
        # Set when the first chunk has been through a worker. Until then only that chunk runs: a stream takes
        # one place in the wait queue to be admitted, and is shed whole or not at all.
        self.admitted = False
        self.unspeakable_message = ""

    def __len__(self) -> int:
        return len(self.chunks)

    def _chunk_job(self, index: int) -> SynthesisJob:
        last = index == len(self.chunks) - 1
        rate = self.job.sample_rate
        if self.job.format == "mp3" and rate:
            # PCM for the front end's MP3 encoder, at a rate MPEG audio has (the worker would pick it for mp3).
            rates = FORMATS["mp3"].sample_rates or ()
            rate = next((allowed for allowed in rates if allowed >= rate), rates[-1])
        return self.job.replace(text=self.chunks[index], format=self.wire_format, chunk=True, sample_rate=rate,
                                pause_after_s=0.0 if last else self.pause_s)

    def _may_start(self, running: int) -> bool:
        """Whether one more chunk may start beside ``running`` unfinished ones (a stream: up to its parallelism)."""
        return running < self.parallelism

    async def _synthesize(self, index: int, admitted: bool) -> Synthesis:
        return await self.runner.run_job(self._chunk_job(index), admitted=admitted)

    async def _run(self, index: int, admitted: bool) -> ChunkAudio | None:
        try:
            synthesis = await self._synthesize(index, admitted)
        except RequestError as exc:
            if exc.status == 400 and _UNSPEAKABLE in str(exc):
                self.unspeakable_message = str(exc)
                self.admitted = True  # a worker took it: past load shedding
                return None
            raise
        self.admitted = True
        return ChunkAudio(index, synthesis.audio, synthesis.worker_id, synthesis.reply)

    def _fill(self) -> None:
        running = sum(1 for task in self.tasks[self.consumed:] if not task.done())
        while len(self.tasks) < len(self.chunks) and len(self.tasks) - self.consumed < MAX_CHUNKS_AHEAD:
            if self.tasks and not self.admitted:
                break  # the first chunk decides admission; the rest start once it is in
            if not self._may_start(running):
                break
            index = len(self.tasks)
            self.tasks.append(asyncio.create_task(self._run(index, self.admitted), name=f"stream-chunk-{index}"))
            running += 1

    async def next(self) -> ChunkAudio | None:
        """The next chunk in order (call exactly ``len(self)`` times)."""
        while True:
            self._fill()
            head = self.tasks[self.consumed]
            if head.done():
                break
            # Wake on any completion, not only the head's: a finished later chunk frees a slot to start another.
            pending = [task for task in self.tasks[self.consumed:] if not task.done()]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        self.consumed += 1
        result = head.result()
        if result is None:
            self.skipped += 1
        self._fill()
        return result

    def close(self) -> int:
        """Cancel every chunk job not finished; returns how many were cancelled."""
        cancelled = 0
        for task in self.tasks:
            if not task.done():
                task.cancel()
                cancelled += 1
            elif not task.cancelled():
                task.exception()  # retrieved, so asyncio does not log "exception was never retrieved"
        return cancelled

    @property
    def not_started(self) -> int:
        return len(self.chunks) - len(self.tasks)
