"""The ordered, parallel chunk runner of a stream (daemon process, event loop): chunk jobs run ahead on several
workers and come back in text order. Only the first chunk is subject to load shedding; see ``tts_ops.http.streaming``
for the whole flow."""

from __future__ import annotations

import asyncio
import logging
import time
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

log = logging.getLogger("tts_ops.stream")


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
        #: Chunk index -> its job, for the chunks started so far (in ``start_order``).
        self.tasks: dict[int, asyncio.Task[ChunkAudio | None]] = {}
        #: The order chunks start in: text order for a stream (its first bytes go out first); a subclass may
        #: reorder (``long_text`` starts the longest first). Results are always handed back in text order.
        self.start_order: list[int] = list(range(len(chunks)))
        #: Most chunks started and not yet handed back (bounds what a stream holds in memory).
        self.max_ahead = MAX_CHUNKS_AHEAD
        self.consumed = 0
        self.skipped = 0
        # Set when the first chunk has been through a worker. Until then only that chunk runs: a stream takes
        # one place in the wait queue to be admitted, and is shed whole or not at all.
        self.admitted = False
        self.unspeakable_message = ""
        self.started = time.monotonic()

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
        started = time.monotonic()
        try:
            synthesis = await self._synthesize(index, admitted)
        except RequestError as exc:
            if exc.status == 400 and _UNSPEAKABLE in str(exc):
                self.unspeakable_message = str(exc)
                self.admitted = True  # a worker took it: past load shedding
                return None
            raise
        self.admitted = True
        # Where the time of a parallel text goes: each chunk's start and end on the pipeline's clock, its worker
        # and the worker's own synthesis time (the rest is queueing and transport).
        log.debug("chunk %d (%d chars) on %s: %.3f-%.3fs, worker %.3fs", index, len(self.chunks[index]),
                  synthesis.worker_id, started - self.started, time.monotonic() - self.started,
                  synthesis.reply.synthesis_s)
        return ChunkAudio(index, synthesis.audio, synthesis.worker_id, synthesis.reply)

    @property
    def upcoming(self) -> int:
        """The index of the chunk that starts next (valid while ``not_started``)."""
        return self.start_order[len(self.tasks)]

    def _fill(self) -> None:
        running = sum(1 for task in self.tasks.values() if not task.done())
        while len(self.tasks) < len(self.chunks) and len(self.tasks) - self.consumed < self.max_ahead:
            if self.tasks and not self.admitted:
                break  # the first chunk decides admission; the rest start once it is in
            if not self._may_start(running):
                break
            index = self.upcoming
            self.tasks[index] = asyncio.create_task(self._run(index, self.admitted), name=f"stream-chunk-{index}")
            running += 1

    async def next(self) -> ChunkAudio | None:
        """The next chunk in text order (call exactly ``len(self)`` times)."""
        while True:
            self._fill()
            head = self.tasks.get(self.consumed)
            if head is not None and head.done():
                break
            # Wake on any completion, not only the head's: a finished chunk frees a slot to start another (and the
            # head itself may not have started yet when chunks start out of text order).
            pending = [task for task in self.tasks.values() if not task.done()]
            if not pending:
                self._raise_failed()
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        self.consumed += 1
        result = head.result()
        if result is None:
            self.skipped += 1
        self._fill()
        return result

    def _raise_failed(self) -> None:
        """Nothing runs and the head cannot start: the chunk started first failed before the request was admitted
        (shed, or its error after retry) while the head was still to start. That chunk's error is the answer."""
        for task in self.tasks.values():
            if task.done() and task.exception() is not None:
                task.result()
        raise RuntimeError("chunk pipeline stalled: nothing runs and no chunk failed")  # a bug, answered as a 500

    def close(self) -> int:
        """Cancel every chunk job not finished; returns how many were cancelled."""
        cancelled = 0
        for task in self.tasks.values():
            if not task.done():
                task.cancel()
                cancelled += 1
            elif not task.cancelled():
                task.exception()  # retrieved, so asyncio does not log "exception was never retrieved"
        return cancelled

    @property
    def not_started(self) -> int:
        return len(self.chunks) - len(self.tasks)
