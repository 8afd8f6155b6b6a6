"""Streaming synthesis of long text (daemon process, event loop): split, synthesize chunks on several workers in
parallel, send them in order with chunked transfer encoding as soon as the next one is ready.

Used by ``POST /v1/audio/speech`` (always) and ``POST /tts`` with ``"stream": true``::

    return await stream_job(frontend, request, job, sse=False)

Flow of one request:

1. Full-result cache: a HIT is answered at once, whole (``X-Cache: HIT``).
2. The text is split with the engine's own splitter (``split_chunks(text, max_chunk_chars)``); each chunk is a
   ``frontend.run_job`` call with ``chunk: true`` (the worker does not re-split it) and ``pause_after_s`` (the
   inter-chunk silence, none after the last), so queueing, the one retry and the deadline apply per chunk.
3. Admission: only the first chunk is subject to load shedding (503 when the wait queue is full), and it runs
   alone. Once it is in, the stream is admitted: every later chunk is ``run_job(..., admitted=True)``, never shed
   and queued at the head, so a stream that has started is not cut off by newer load. Then up to ``parallelism``
   chunks run at once (READY workers, 1..``MAX_STREAM_PARALLELISM``), at most ``MAX_CHUNKS_AHEAD``
   finished-but-unsent chunks are buffered. Nothing is sent before the first chunk with
   audio is ready, so every error up to then (bad voice, overload, timeout, all chunks unspeakable) is a normal
   HTTP error response; after the first byte an error aborts the connection (the client sees a truncated
   chunked body) and is logged. A chunk the worker finds unspeakable (400 "nothing speakable") is skipped.
4. A client that goes away cancels the chunk jobs still queued or running (aiohttp cancels the handler, or the
   next write fails); nothing more is sent to the workers for it.
5. A completed stream is stored in the cache as the whole file it amounts to.

How each format is assembled is described in ``stream_formats``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import time
from typing import Any

from aiohttp import web

from inference.audio import FORMATS
from inference.text.chunking import split_chunks
from tts_ops.server.errors import HttpError, RequestError, ServiceError
from tts_ops.server.stream_formats import ASSEMBLERS, Assembler, ChunkAudio

log = logging.getLogger("tts_ops.stream")

#: Most chunks of one stream synthesized at once (the lookahead window also never exceeds the READY workers).
MAX_STREAM_PARALLELISM = 4
#: Most finished chunks held in memory ahead of the one being sent.
MAX_CHUNKS_AHEAD = 8
#: Sambert has no chunking settings in the config: its engine defaults (inference/engines/sambert.py).
SAMBERT_MAX_CHUNK_CHARS = 100
SAMBERT_PAUSE_S = 0.25
#: SSE deltas of a cache HIT are cut to this size, like a streamed answer.
SSE_PIECE_BYTES = 32 * 1024
#: Usage reported in ``speech.audio.done``: output tokens are 20 ms audio frames (input tokens are characters).
OUTPUT_TOKEN_S = 0.02
_UNSPEAKABLE = "speakable"


def chunk_settings(config: Any) -> tuple[int, float]:
    """(max_chunk_chars, pause_s) of the configured engine: the same split the engine would make itself."""
    if config.workers.engine == "fastspeech2-baker":
        section = config.engines.fastspeech2_baker
        return section.max_chunk_chars, section.pause_s
    return SAMBERT_MAX_CHUNK_CHARS, SAMBERT_PAUSE_S


def stream_parallelism(frontend: Any) -> int:
    return max(1, min(MAX_STREAM_PARALLELISM, len(frontend.supervisor.ready_workers())))


# --- the ordered, parallel chunk pipeline -----------------------------------------------------------------------


class ChunkPipeline:
    """Runs chunk jobs ahead in parallel and hands their results back in text order. ``next()`` returns a
    ``ChunkAudio``, None for a skipped (unspeakable) chunk, or raises the chunk's HttpError; ``close()`` cancels
    whatever is still queued or running (always call it)."""

    def __init__(self, frontend: Any, job: dict[str, Any], chunks: list[str], wire_format: str, pause_s: float,
                 parallelism: int) -> None:
        self.frontend = frontend
        self.job = job
        self.chunks = chunks
        self.wire_format = wire_format
        self.pause_s = pause_s
        self.parallelism = max(1, parallelism)
        self.tasks: list[asyncio.Task] = []
        self.consumed = 0
        self.skipped = 0
        # Set when the first chunk has been through a worker. Until then only that chunk runs: a stream takes
        # one place in the wait queue to be admitted, and is shed whole or not at all.
        self.admitted = False
        self.unspeakable_message = ""

    def __len__(self) -> int:
        return len(self.chunks)

    def _chunk_job(self, index: int) -> dict[str, Any]:
        last = index == len(self.chunks) - 1
        job = {**self.job, "text": self.chunks[index], "format": self.wire_format, "chunk": True,
               "pause_after_s": 0.0 if last else self.pause_s}
        if self.job["format"] == "mp3" and job.get("sample_rate"):
            # PCM for the front end's MP3 encoder, at a rate MPEG audio has (the worker would pick it for mp3).
            rates = FORMATS["mp3"].sample_rates or ()
            job["sample_rate"] = next((rate for rate in rates if rate >= job["sample_rate"]), rates[-1])
        return job

    async def _run(self, index: int, admitted: bool) -> ChunkAudio | None:
        try:
            synthesis = await self.frontend.run_job(self._chunk_job(index), admitted=admitted)
        except RequestError as exc:
            if exc.status == 400 and _UNSPEAKABLE in str(exc):
                self.unspeakable_message = str(exc)
                self.admitted = True  # a worker took it: past load shedding
                return None
            raise
        self.admitted = True
        headers = synthesis.headers
        return ChunkAudio(index, synthesis.audio, _int(headers.get("X-Sample-Rate")),
                          _float(headers.get("X-Audio-Duration")), synthesis.worker_id, dict(headers))

    def _fill(self) -> None:
        running = sum(1 for task in self.tasks[self.consumed:] if not task.done())
        while (len(self.tasks) < len(self.chunks) and running < self.parallelism
               and len(self.tasks) - self.consumed < MAX_CHUNKS_AHEAD):
            if self.tasks and not self.admitted:
                break  # the first chunk decides admission; the rest start once it is in
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


# --- the HTTP side ----------------------------------------------------------------------------------------------


def sse_event(event: dict[str, Any]) -> bytes:
    """One Server-Sent Event as OpenAI sends them: the type as ``event:`` and the JSON object as ``data:``."""
    return (f"event: {event['type']}\ndata: " + json.dumps(event, separators=(",", ":")) + "\n\n").encode()


def sse_delta(audio: bytes) -> bytes:
    return sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode("ascii")})


def sse_done(input_chars: int, duration_s: float) -> bytes:
    output = math.ceil(duration_s / OUTPUT_TOKEN_S) if duration_s > 0 else 0
    return sse_event({"type": "speech.audio.done",
                      "usage": {"input_tokens": input_chars, "output_tokens": output,
                                "total_tokens": input_chars + output}})


def _extension(fmt: str) -> str:
    return {"opus": "ogg"}.get(fmt, fmt)


async def stream_job(frontend: Any, request: web.Request, job: dict[str, Any], *, sse: bool = False,
                     headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Answer ``job`` (a validated worker job: text, emotion, speed, format, optional voice/sample_rate) as a
    stream. Raises HttpError while nothing has been sent; the caller renders it in its API's error shape."""
    fmt = job["format"]
    base_headers = {"X-Request-ID": request.get("request_id", ""), "Cache-Control": "no-store",
                    **(headers or {})}
    if not sse:
        base_headers["Content-Disposition"] = f'inline; filename="speech.{_extension(fmt)}"'

    cache, key = getattr(frontend, "cache", None), None
    if cache is not None:
        key = frontend.cache_key(job)  # None while no worker has reported its model version
        hit = await _cache_get(cache, key) if key is not None else None
        if hit is not None:
            base_headers.update(await _record(frontend, request, job, hit, "HIT", None))
            return await _send_hit(request, hit, fmt, job, sse, base_headers)

    max_chars, pause_s = chunk_settings(frontend.config)
    chunks = split_chunks(job["text"], max_chars)
    if not chunks:
        raise RequestError(400, "text contains nothing speakable", param="text")
    assembler = ASSEMBLERS[fmt](fmt)
    pipeline = ChunkPipeline(frontend, job, chunks, assembler.wire_format, pause_s, stream_parallelism(frontend))
    response: web.StreamResponse | None = None
    started = time.monotonic()
    duration = synthesis_s = 0.0
    first: ChunkAudio | None = None
    sent_chunks = 0
    try:
        for _ in range(len(pipeline)):
            chunk = await pipeline.next()
            if chunk is None:
                continue
            duration += chunk.duration_s
            synthesis_s += _float(chunk.headers.get("X-Synthesis-Time"))
            data = await assembler.add(chunk)
            if first is None:
                first = chunk
                request["worker_id"] = chunk.worker_id
                if assembler.streams:
                    response = await _prepare(request, assembler, chunk, sse, base_headers)
            if response is not None and data:
                await response.write(sse_delta(data) if sse else data)
            sent_chunks += 1
        if first is None:
            raise RequestError(400, pipeline.unspeakable_message or "text contains nothing speakable", param="text")
        tail = await assembler.finish()
        if response is None:  # a buffered format: everything goes now
            response = await _prepare(request, assembler, first, sse, base_headers)
            tail = assembler.complete()
        if tail:
            await response.write(sse_delta(tail) if sse else tail)
        if sse:
            await response.write(sse_done(len(job["text"]), duration))
        await response.write_eof()
    except HttpError as exc:
        if response is None:
            raise
        log.error("stream aborted after %d of %d chunks [request=%s]: %s (HTTP %d)", sent_chunks, len(chunks),
                  request.get("request_id"), exc, exc.status)
        _abort(request)
        return response
    except (ConnectionError, asyncio.CancelledError) as exc:
        cancelled = pipeline.close()
        log.info("stream cancelled, client gone after %d of %d chunks; %d chunk jobs cancelled, %d never "
                 "started [request=%s]", sent_chunks, len(chunks), cancelled, pipeline.not_started,
                 request.get("request_id"))
        if isinstance(exc, asyncio.CancelledError):
            raise
        return response if response is not None else web.Response(status=499, reason="Client Closed Request")
    except Exception as exc:  # an encoder or joiner bug: same rules as any other failure
        log.exception("stream failed after %d of %d chunks [request=%s]", sent_chunks, len(chunks),
                      request.get("request_id"))
        if response is None:
            raise ServiceError(500, f"could not assemble the {fmt} stream: {exc}") from exc
        _abort(request)
        return response
    finally:
        pipeline.close()
        assembler.close()
    log.info("streamed %d chunks (%d skipped) in %.2fs, %.2fs of audio [request=%s]", sent_chunks,
             pipeline.skipped, time.monotonic() - started, duration, request.get("request_id"))
    audio = _complete_audio(assembler, duration, synthesis_s, first)
    if cache is not None and key is not None:
        await _cache_put(cache, key, audio)
    # Log line, metrics and the saved copy (output.save) like a whole synthesis; its headers (X-Output-URL) come
    # too late for a stream that is already sent.
    await _record(frontend, request, job, audio, "MISS", first.worker_id if first else None)
    return response


async def _prepare(request: web.Request, assembler: Assembler, first: ChunkAudio, sse: bool,
                   base_headers: dict[str, str]) -> web.StreamResponse:
    headers = dict(base_headers)
    headers.update({"X-Cache": "MISS", "X-Sample-Rate": str(assembler.sample_rate or first.sample_rate),
                    "X-Worker": first.worker_id})
    for name in ("X-Engine", "X-Model-Version"):
        if name in first.headers:
            headers[name] = first.headers[name]
    response = web.StreamResponse(headers=headers)
    response.content_type = "text/event-stream" if sse else assembler.content_type
    if assembler.streams or sse:
        response.enable_chunked_encoding()
    else:
        response.content_length = len(assembler.complete())
    await response.prepare(request)
    return response


def _abort(request: web.Request) -> None:
    """End a response mid-body: the client sees a truncated chunked stream, never a silently short file."""
    transport = request.transport
    if transport is not None:
        transport.close()


async def _send_hit(request: web.Request, hit: Any, fmt: str, job: dict[str, Any], sse: bool,
                    base_headers: dict[str, str]) -> web.StreamResponse:
    headers = dict(base_headers)
    headers.update({"X-Cache": "HIT", "X-Sample-Rate": str(hit.sample_rate),
                    "X-Audio-Duration": f"{hit.duration_s:.3f}"})
    stored = hit.meta.get("headers") if isinstance(hit.meta, dict) else None
    if isinstance(stored, dict):
        headers.update({k: str(v) for k, v in stored.items() if k in ("X-Engine", "X-Model-Version")})
    if not sse:
        return web.Response(body=hit.data, content_type=hit.content_type, headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_type = "text/event-stream"
    await response.prepare(request)
    for start in range(0, len(hit.data), SSE_PIECE_BYTES):
        await response.write(sse_delta(hit.data[start:start + SSE_PIECE_BYTES]))
    await response.write(sse_done(len(job["text"]), hit.duration_s))
    await response.write_eof()
    return response


# --- cache (failures never fail a request) ----------------------------------------------------------------------


async def _cache_get(cache: Any, key: str) -> Any:
    try:
        return await cache.get(key)
    except Exception as exc:  # the cache is an optimisation: a broken one is a miss
        log.warning("cache lookup failed, treating as a miss: %s", exc)
        return None


def _complete_audio(assembler: Assembler, duration: float, synthesis_s: float, first: ChunkAudio | None) -> Any:
    """The whole stream as the cache stores a whole synthesis (same meta shape as FrontEnd._synthesize_uncached,
    so a HIT answers alike whichever path stored it)."""
    from tts_ops.cache.audio import CachedAudio

    meta: dict[str, Any] = {"streamed": True, "synthesis_s": round(synthesis_s, 3)}
    if first is not None:
        meta.update({"worker": first.worker_id,
                     "headers": {k: first.headers[k] for k in ("X-Engine", "X-Model-Version") if k in first.headers}})
    return CachedAudio(assembler.complete(), assembler.content_type, assembler.sample_rate, round(duration, 3), meta)


async def _cache_put(cache: Any, key: str, audio: Any) -> None:
    try:
        await cache.put(key, audio)
    except Exception as exc:
        log.warning("could not cache the streamed result: %s", exc)


async def _record(frontend: Any, request: web.Request, job: dict[str, Any], audio: Any, cache: str,
                  worker: str | None) -> dict[str, str]:
    """``FrontEnd.record`` (synthesis log, metrics, saved output); best effort, like the cache."""
    record = getattr(frontend, "record", None)
    if record is None:
        return {}
    try:
        return dict(await record(request, job, audio, cache, worker) or {})
    except Exception as exc:
        log.warning("could not record the streamed result: %s", exc)
        return {}


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def _float(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0
