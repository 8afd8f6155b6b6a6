"""The production of a stream (daemon process, event loop), independent of HTTP: the chunk pipeline run through a
format's assembler, emitting a ``StreamHead`` then the bytes to send as they are assembled, and ending with the
whole file as the cache stores it. Identical streams share one production (single flight, ``join``).

``SynthesisService.open_stream`` plans it (split, pause, parallelism); ``tts_ops.http.streaming`` reads it and
writes the response; the flow of one streamed request is described there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tts_ops.cache import CachedAudio, ResultCache
from tts_ops.cache.singleflight import StreamFlights, StreamReader
from tts_ops.service.assemblers import ASSEMBLERS, Assembler, ChunkAudio
from tts_ops.service.chunk_pipeline import ChunkPipeline, JobRunner
from tts_ops.service.errors import HttpError, RequestError, ServiceError
from tts_ops.service.stream_timings import StreamTimings
from tts_vocab import SynthesisJob
from tts_vocab.messages import MAX_SKIPPED
from tts_vocab.timings import Timings

__all__ = ["Emit", "StreamHead", "StreamItem", "StreamPlan", "cache_get", "complete_audio", "head_of", "join",
           "produce"]

log = logging.getLogger("tts_ops.stream")



@dataclass(frozen=True)
class StreamHead:
    """What the response headers of a stream need, known once its first chunk with audio is assembled."""

    sample_rate: int
    worker_id: str
    headers: dict[str, str]
    content_type: str


#: What a production makes, in order: one ``StreamHead`` (streamed formats only), then the bytes to send, each
#: chunk's ``Timings`` after its bytes when the job asked for timestamps.
StreamItem = StreamHead | bytes | Timings
Emit = Callable[[StreamItem], None]


@dataclass(frozen=True)
class StreamPlan:
    """One production: the job, its chunks, the pause between them, how many run at once, and (for log lines
    only) the id of the request that started it."""

    job: SynthesisJob
    chunks: list[str]
    pause_s: float
    parallelism: int
    request_id: str | None


def join(runner: JobRunner, cache: ResultCache | None, key: str | None,
         plan: StreamPlan) -> StreamReader[StreamItem, CachedAudio]:
    """A reader of ``plan``'s production. Identical streams in flight share one production, stored in the cache when
    it completes; without a cache key (no cache, or no model version reported yet) each stream is its own and
    nothing is stored."""

    async def run(emit: Emit) -> CachedAudio:
        return await produce(runner, plan, emit)

    if cache is not None and key is not None:
        return cache.join_stream(key, run)
    return StreamFlights[StreamItem, CachedAudio]().join("", run)


async def produce(runner: JobRunner, plan: StreamPlan, emit: Emit,
                  pipeline: ChunkPipeline | None = None) -> CachedAudio:
    """The production shared by identical streams: runs the chunk pipeline, emits a ``StreamHead`` then the bytes
    to send as they are assembled, and returns the whole file. Raises HttpError on any failure. ``pipeline``: one
    built for ``plan`` with other rules for starting chunks (a long non-streamed text, ``long_text``)."""
    fmt = plan.job.format
    assembler = ASSEMBLERS[fmt](fmt)
    if pipeline is None:
        pipeline = ChunkPipeline(runner, plan.job, plan.chunks, assembler.wire_format, plan.pause_s,
                                 plan.parallelism)
    progress = _Progress()
    if plan.job.timestamps:
        # The text the chunks' timings cover: for SSML (one chunk, the whole document) its spoken text.
        progress.timed_chunks = [plan.job.ssml.spoken] if plan.job.ssml is not None else list(plan.chunks)
        progress.timings = StreamTimings(plan.job.ssml.spoken if plan.job.ssml is not None else plan.job.text)
    try:
        await _assemble(pipeline, assembler, progress, emit)
    except HttpError as exc:
        if progress.first is not None and assembler.streams:
            log.error("stream aborted after %d of %d chunks [request=%s]: %s (HTTP %d)", progress.produced,
                      len(plan.chunks), plan.request_id, exc, exc.status)
        raise
    except asyncio.CancelledError:
        cancelled = pipeline.close()
        log.info("stream cancelled, client gone after %d of %d chunks; %d chunk jobs cancelled, %d never "
                 "started [request=%s]", progress.produced, len(plan.chunks), cancelled, pipeline.not_started,
                 plan.request_id)
        raise
    except Exception as exc:  # an encoder or joiner bug: an error like any other for every reader
        log.exception("stream failed after %d of %d chunks [request=%s]", progress.produced, len(plan.chunks),
                      plan.request_id)
        raise ServiceError(500, f"could not assemble the {fmt} stream: {exc}") from exc
    finally:
        pipeline.close()
        assembler.close()
    log.info("streamed %d chunks (%d skipped) in %.2fs, %.2fs of audio [request=%s]", progress.produced,
             pipeline.skipped, time.monotonic() - progress.started, progress.duration, plan.request_id)
    audio = complete_audio(assembler, progress.duration, progress.synthesis_s, progress.first, progress.skipped)
    if progress.timings is not None:
        audio.meta["timings"] = progress.timings.whole().to_wire()
    return audio


def _timed_part(progress: _Progress, chunk: ChunkAudio, offset_s: float) -> Timings:
    """The chunk's timings placed in the stream; a worker's reply without them (or for another text) is an upstream
    fault, answered like any other (502), never silently left out of the timeline."""
    assert progress.timings is not None
    if chunk.reply.timings is None:
        raise ServiceError(502, "a worker sent no timestamps for a chunk")
    try:
        return progress.timings.add(progress.timed_chunks[chunk.index], chunk.reply.timings, offset_s)
    except (ValueError, IndexError) as exc:
        raise ServiceError(502, f"a worker's timestamps do not fit the text: {exc}") from None


@dataclass
class _Progress:
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0
    synthesis_s: float = 0.0
    skipped: list[str] = field(default_factory=list)
    produced: int = 0
    first: ChunkAudio | None = None
    timings: StreamTimings | None = None
    timed_chunks: list[str] = field(default_factory=list)


async def _assemble(pipeline: ChunkPipeline, assembler: Assembler, progress: _Progress, emit: Emit) -> None:
    """Every chunk in text order through the assembler; what a streamed format can send goes to ``emit``."""
    for _ in range(len(pipeline)):
        chunk = await pipeline.next()
        if chunk is None:
            continue
        offset_s = progress.duration
        progress.duration += chunk.duration_s
        progress.synthesis_s += chunk.reply.synthesis_s
        # Distinct code points over the whole stream, as many as one reply names.
        fresh = [c for c in chunk.reply.skipped if c not in progress.skipped]
        progress.skipped += fresh[: max(0, MAX_SKIPPED - len(progress.skipped))]
        data = await assembler.add(chunk)
        if progress.first is None:
            progress.first = chunk
            if assembler.streams:
                emit(StreamHead(assembler.sample_rate or chunk.sample_rate, chunk.worker_id, _model_headers(chunk),
                                assembler.content_type))
        if assembler.streams and data:
            emit(data)
        if progress.timings is not None:
            part = _timed_part(progress, chunk, offset_s)
            if assembler.streams:
                emit(part)
        progress.produced += 1
    if progress.first is None:
        raise RequestError(400, pipeline.unspeakable_message or "text contains nothing speakable", param="text")
    tail = await assembler.finish()
    if assembler.streams and tail:
        emit(tail)
    if progress.timings is not None:
        rest = progress.timings.finish(progress.duration)
        if assembler.streams and rest.chars:
            emit(rest)


def complete_audio(assembler: Assembler, duration: float, synthesis_s: float,
                   first: ChunkAudio | None, skipped: list[str] | None = None) -> CachedAudio:
    """The whole stream as the cache stores a whole synthesis (same meta shape as
    ``SynthesisService._synthesize_uncached``, so a HIT answers alike whichever path stored it)."""
    meta: dict[str, Any] = {"streamed": True, "synthesis_s": round(synthesis_s, 3)}
    if skipped:
        meta["skipped"] = list(skipped)
    if first is not None:
        meta.update({"worker": first.worker_id, "headers": _model_headers(first)})
    return CachedAudio(assembler.complete(), assembler.content_type, assembler.sample_rate, round(duration, 3), meta)


def head_of(audio: CachedAudio) -> StreamHead:
    """The head of a buffered format, known only once the whole file is (its production emits no head)."""
    meta = audio.meta if isinstance(audio.meta, dict) else {}
    return StreamHead(audio.sample_rate, str(meta.get("worker") or ""), dict(meta.get("headers") or {}),
                      audio.content_type)


def _model_headers(chunk: ChunkAudio) -> dict[str, str]:
    return chunk.reply.model_headers()


async def cache_get(cache: ResultCache, key: str) -> CachedAudio | None:
    """A cache lookup that never fails a request: the cache is an optimisation, a broken one is a miss."""
    try:
        return await cache.get(key)
    except Exception as exc:
        log.warning("cache lookup failed, treating as a miss: %s", exc)
        return None
