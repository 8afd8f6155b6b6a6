"""Streaming synthesis of long text (daemon process, event loop): split, synthesize chunks on several workers in
parallel, send them in order with chunked transfer encoding as soon as the next one is ready.

Used by ``POST /v1/audio/speech`` (always) and ``POST /tts`` with ``"stream": true``::

    return await stream_job(frontend, request, job, sse=False)

Flow of one request:

1. Full-result cache: a HIT is answered at once, whole (``X-Cache: HIT``).
2. Single flight: identical requests (same cache key) in flight at the same time share one *production*
   (``ResultCache.join_stream``), run in its own task: the first request starts it, every request, the first
   included, replays what it has produced so far and then follows it live, so each still gets an early first
   byte. A request whose client goes away does not stop it while another still reads; the last one leaving
   cancels it. An error reaches every reader. Only the first reader to finish counts the synthesis (metrics,
   ``synthesis.log``); the others log theirs as ``shared``. Without a cache key each stream is its own.
3. The production splits the text with the engine's own splitter (``split_chunks(text, max_chunk_chars)``); each
   chunk is a ``frontend.run_job`` call with ``chunk: true`` (the worker does not re-split it) and
   ``pause_after_s`` (the inter-chunk silence, none after the last), so queueing, the one retry and the deadline
   apply per chunk.
4. Admission: only the first chunk is subject to load shedding (503 when the wait queue is full), and it runs
   alone. Once it is in, the stream is admitted: every later chunk is ``run_job(..., admitted=True)``, never shed
   and queued at the head, so a stream that has started is not cut off by newer load. Then up to ``parallelism``
   chunks run at once (READY workers, 1..``MAX_STREAM_PARALLELISM``), at most ``MAX_CHUNKS_AHEAD``
   finished-but-unassembled chunks are buffered. Nothing is sent before the first chunk with
   audio is ready, so every error up to then (bad voice, overload, timeout, all chunks unspeakable) is a normal
   HTTP error response; after the first byte an error aborts the connection (the client sees a truncated
   chunked body), is logged, and the access line and request metric get ``final_status`` (the error's 5xx
   status, 502 for a 4xx from a worker) instead of the 200 already sent. A chunk the worker finds unspeakable
   (400 "nothing speakable") is skipped.
5. A client that goes away (aiohttp cancels the handler, or the next write fails) is logged as 499; once no
   request reads the production, the chunk jobs still queued or running are cancelled and nothing more is sent
   to the workers for it.
6. A completed production is stored in the cache as the whole file it amounts to.

How each format is assembled is described in ``stream_formats``; the ordered parallel chunk runner is
``chunk_pipeline``; OpenAI's SSE events are encoded in ``sse``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

from inference.text.chunking import split_chunks
from tts_ops.cache.singleflight import StreamFlights
from tts_ops.http.errors import HttpError, RequestError, ServiceError
from tts_ops.http.middleware import CLIENT_CLOSED, FINAL_STATUS
from tts_ops.service.chunk_pipeline import ChunkPipeline, chunk_settings, stream_parallelism
from tts_ops.http.sse import SSE_PIECE_BYTES, sse_delta, sse_done
from tts_ops.service.assemblers import ASSEMBLERS, Assembler, ChunkAudio
from tts_vocab import SynthesisJob, headers as h
from tts_vocab.formats import extension_for

log = logging.getLogger("tts_ops.stream")

# --- the HTTP side ----------------------------------------------------------------------------------------------


@dataclass
class StreamHead:
    """What the response headers of a stream need, known once its first chunk with audio is assembled."""

    sample_rate: int
    worker_id: str
    headers: dict[str, str]
    content_type: str


async def stream_job(frontend: Any, request: web.Request, job: SynthesisJob, *, sse: bool = False,
                     headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Answer ``job`` (a validated worker job: text, emotion, speed, format, optional voice/sample_rate) as a
    stream. Raises HttpError while nothing has been sent; the caller renders it in its API's error shape."""
    fmt = job.format
    base_headers = {h.REQUEST_ID: request.get("request_id", ""), "Cache-Control": "no-store",
                    **(headers or {})}
    if not sse:
        base_headers["Content-Disposition"] = f'inline; filename="speech.{extension_for(fmt)}"'

    cache, key = getattr(frontend, "cache", None), None
    if cache is not None:
        key = frontend.cache_key(job)  # None while no worker has reported its model version
        hit = await _cache_get(cache, key) if key is not None else None
        if hit is not None:
            base_headers.update(await _record(frontend, request, job, hit, "HIT", None))
            response = await _send_hit(request, hit, fmt, job, sse, base_headers)
            _count_ok(frontend)
            return response

    max_chars, pause_s = chunk_settings(frontend.config)
    chunks = split_chunks(job.text, max_chars)
    if not chunks:
        raise RequestError(400, "text contains nothing speakable", param="text")

    async def produce(emit: Callable[[Any], None]) -> Any:
        return await _produce(frontend, job, chunks, pause_s, request.get("request_id"), emit)

    # Identical streams in flight share one production, stored in the cache when it completes; without a cache
    # key (no cache, or no model version reported yet) each stream is its own and nothing is stored.
    reader = cache.join_stream(key, produce) if key is not None else StreamFlights().join("", produce)
    response: web.StreamResponse | None = None
    sent = 0
    async with reader:
        try:
            async for item in reader:
                if isinstance(item, StreamHead):
                    response = await _prepare(request, item, sse, base_headers, None)
                else:
                    await response.write(sse_delta(item) if sse else item)
                    sent += len(item)
            audio = reader.result
            if response is None:  # a buffered format: everything goes now
                response = await _prepare(request, _head_of(audio), sse, base_headers, len(audio.data))
                await response.write(sse_delta(audio.data) if sse else audio.data)
            if sse:
                await response.write(sse_done(len(job.text), audio.duration_s))
            await response.write_eof()
        except HttpError as exc:
            if response is None:
                raise
            # Logged once by the production; this client sees a truncated chunked body, the access line the cause.
            request[FINAL_STATUS] = exc.status if exc.status >= 500 else 502
            _abort(request)
            return response
        except (ConnectionError, asyncio.CancelledError) as exc:
            request[FINAL_STATUS] = CLIENT_CLOSED
            log.info("stream client gone after %d bytes (%s reader) [request=%s]", sent, reader.role,
                     request.get("request_id"))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return response if response is not None else web.Response(status=CLIENT_CLOSED,
                                                                       reason="Client Closed Request")
        except Exception as exc:  # SharedCallCancelled, or a bug here: same rules as any other failure
            log.exception("stream failed after %d bytes [request=%s]", sent, request.get("request_id"))
            if response is None:
                raise ServiceError(500, f"could not send the {fmt} stream: {exc}") from exc
            request[FINAL_STATUS] = 500
            _abort(request)
            return response
        # The first reader to finish accounts for the synthesis; the others shared it (no second count).
        shared = not reader.claim()
    _count_ok(frontend)
    # Log line, metrics and the saved copy (output.save) like a whole synthesis; its headers (X-Output-URL) come
    # too late for a stream that is already sent.
    await _record(frontend, request, job, audio, "MISS", audio.meta.get("worker"), shared=shared)
    return response


async def _produce(frontend: Any, job: SynthesisJob, chunks: list[str], pause_s: float, request_id: str | None,
                   emit: Callable[[Any], None]) -> Any:
    """The production shared by identical streams: runs the chunk pipeline, emits a ``StreamHead`` then the bytes
    to send as they are assembled, and returns the whole file (CachedAudio). Raises HttpError on any failure."""
    fmt = job.format
    assembler = ASSEMBLERS[fmt](fmt)
    pipeline = ChunkPipeline(frontend, job, chunks, assembler.wire_format, pause_s, stream_parallelism(frontend))
    started = time.monotonic()
    duration = synthesis_s = 0.0
    first: ChunkAudio | None = None
    produced = 0
    try:
        for _ in range(len(pipeline)):
            chunk = await pipeline.next()
            if chunk is None:
                continue
            duration += chunk.duration_s
            synthesis_s += chunk.reply.synthesis_s if chunk.reply else 0.0
            data = await assembler.add(chunk)
            if first is None:
                first = chunk
                if assembler.streams:
                    emit(StreamHead(assembler.sample_rate or chunk.sample_rate, chunk.worker_id,
                                    _model_headers(chunk), assembler.content_type))
            if assembler.streams and data:
                emit(data)
            produced += 1
        if first is None:
            raise RequestError(400, pipeline.unspeakable_message or "text contains nothing speakable", param="text")
        tail = await assembler.finish()
        if assembler.streams and tail:
            emit(tail)
    except HttpError as exc:
        if first is not None and assembler.streams:
            log.error("stream aborted after %d of %d chunks [request=%s]: %s (HTTP %d)", produced, len(chunks),
                      request_id, exc, exc.status)
        raise
    except asyncio.CancelledError:
        cancelled = pipeline.close()
        log.info("stream cancelled, client gone after %d of %d chunks; %d chunk jobs cancelled, %d never "
                 "started [request=%s]", produced, len(chunks), cancelled, pipeline.not_started, request_id)
        raise
    except Exception as exc:  # an encoder or joiner bug: an error like any other for every reader
        log.exception("stream failed after %d of %d chunks [request=%s]", produced, len(chunks), request_id)
        raise ServiceError(500, f"could not assemble the {fmt} stream: {exc}") from exc
    finally:
        pipeline.close()
        assembler.close()
    log.info("streamed %d chunks (%d skipped) in %.2fs, %.2fs of audio [request=%s]", produced,
             pipeline.skipped, time.monotonic() - started, duration, request_id)
    return _complete_audio(assembler, duration, synthesis_s, first)


async def _prepare(request: web.Request, head: StreamHead, sse: bool, base_headers: dict[str, str],
                   content_length: int | None) -> web.StreamResponse:
    """``content_length``: the size of a buffered format's body (None: a chunked stream)."""
    request["worker_id"] = head.worker_id
    headers = dict(base_headers)
    headers.update({h.CACHE: "MISS", h.SAMPLE_RATE: str(head.sample_rate), h.WORKER: head.worker_id,
                    **head.headers})
    response = web.StreamResponse(headers=headers)
    response.content_type = "text/event-stream" if sse else head.content_type
    if content_length is None or sse:
        response.enable_chunked_encoding()
    else:
        response.content_length = content_length
    await response.prepare(request)
    return response


def _head_of(audio: Any) -> StreamHead:
    meta = audio.meta if isinstance(audio.meta, dict) else {}
    return StreamHead(audio.sample_rate, str(meta.get("worker") or ""), dict(meta.get("headers") or {}),
                      audio.content_type)


def _kept(headers: dict[str, str]) -> dict[str, str]:
    return {k: headers[k] for k in h.MODEL_HEADERS if k in headers}


def _model_headers(chunk: ChunkAudio) -> dict[str, str]:
    return chunk.reply.model_headers() if chunk.reply else {}


def _count_ok(frontend: Any) -> None:
    totals = getattr(frontend, "totals", None)
    if totals is not None:
        totals["ok"] += 1


def _abort(request: web.Request) -> None:
    """End a response mid-body: the client sees a truncated chunked stream, never a silently short file."""
    transport = request.transport
    if transport is not None:
        transport.close()


async def _send_hit(request: web.Request, hit: Any, fmt: str, job: SynthesisJob, sse: bool,
                    base_headers: dict[str, str]) -> web.StreamResponse:
    headers = dict(base_headers)
    headers.update({h.CACHE: "HIT", h.SAMPLE_RATE: str(hit.sample_rate),
                    h.AUDIO_DURATION: f"{hit.duration_s:.3f}"})
    stored = hit.meta.get("headers") if isinstance(hit.meta, dict) else None
    if isinstance(stored, dict):
        headers.update({k: str(v) for k, v in _kept(stored).items()})
    if not sse:
        return web.Response(body=hit.data, content_type=hit.content_type, headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_type = "text/event-stream"
    await response.prepare(request)
    for start in range(0, len(hit.data), SSE_PIECE_BYTES):
        await response.write(sse_delta(hit.data[start:start + SSE_PIECE_BYTES]))
    await response.write(sse_done(len(job.text), hit.duration_s))
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
        meta.update({"worker": first.worker_id, "headers": _model_headers(first)})
    return CachedAudio(assembler.complete(), assembler.content_type, assembler.sample_rate, round(duration, 3), meta)


async def _record(frontend: Any, request: web.Request, job: SynthesisJob, audio: Any, cache: str,
                  worker: str | None, *, shared: bool = False) -> dict[str, str]:
    """``FrontEnd.record`` (synthesis log, metrics, saved output); best effort, like the cache. ``shared``: the
    audio came from another request's synthesis, which that request accounts for."""
    record = getattr(frontend, "record", None)
    if record is None:
        return {}
    try:
        return dict(await record(request, job, audio, cache, worker, shared=shared) or {})
    except Exception as exc:
        log.warning("could not record the streamed result: %s", exc)
        return {}
