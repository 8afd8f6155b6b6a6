"""Streaming synthesis of long text (daemon process, event loop): split, synthesize chunks on several workers in
parallel, send them in order with chunked transfer encoding as soon as the next one is ready.

Used by ``POST /v1/audio/speech`` (always) and ``POST /tts`` with ``"stream": true``::

    return await stream_job(service, request, job, sse=False)

Flow of one request:

1. Full-result cache: a HIT is answered at once, whole (``X-Cache: HIT``).
2. Single flight: identical requests (same cache key) in flight at the same time share one *production*
   (``ResultCache.join_stream``), run in its own task: the first request starts it, every request, the first
   included, replays what it has produced so far and then follows it live, so each still gets an early first
   byte. A request whose client goes away does not stop it while another still reads; the last one leaving
   cancels it. An error reaches every reader. Only the first reader to finish counts the synthesis (metrics,
   ``synthesis.log``); the others log theirs as ``shared``. Without a cache key each stream is its own.
3. The production splits the text with the engine's own splitter (``split_chunks(text, max_chunk_chars)``); each
   chunk is a ``SynthesisService.run_job`` call with ``chunk: true`` (the worker does not re-split it) and
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

This module is the HTTP side (prepare, write, abort, SSE framing, status bookkeeping); the production of a stream
(points 2, 3 and 6) is ``tts_ops.service.stream_production``, the ordered parallel chunk runner
``tts_ops.service.chunk_pipeline``, how each format is assembled ``tts_ops.service.assemblers``; OpenAI's SSE
events are encoded in ``sse``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiohttp import web

from tts_ops.cache import CachedAudio
from tts_ops.cache.singleflight import StreamReader
from tts_ops.http.middleware import CLIENT_CLOSED, FINAL_STATUS
from tts_ops.http.sse import SSE_PIECE_BYTES, sse_delta, sse_done, sse_timestamps
from tts_ops.service.errors import HttpError, ServiceError
from tts_ops.service.stream_production import StreamHead, StreamItem, head_of
from tts_ops.service.totals import Totals
from tts_vocab import SynthesisJob
from tts_vocab import headers as h
from tts_vocab.formats import extension_for
from tts_vocab.timings import Timings

__all__ = ["StreamingService", "stream_job"]

log = logging.getLogger("tts_ops.stream")


class StreamingService(Protocol):
    """What a streamed answer needs of the synthesis service (``tts_ops.service.synthesis.SynthesisService``)."""

    totals: Totals

    async def lookup(self, job: SynthesisJob) -> tuple[str | None, CachedAudio | None]: ...

    def open_stream(self, job: SynthesisJob, key: str | None, request_id: str | None
                    ) -> StreamReader[StreamItem, CachedAudio]: ...

    async def record(self, job: SynthesisJob, audio: CachedAudio | None, cache: str, worker: str | None, *,
                     request_id: str | None, server_id: str, shared: bool = False) -> dict[str, str]: ...


async def stream_job(service: StreamingService, request: web.Request, job: SynthesisJob, *, sse: bool = False,
                     headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Answer ``job`` (a validated worker job: text, emotion, speed, format, optional voice/sample_rate) as a
    stream. Raises HttpError while nothing has been sent; the caller renders it in its API's error shape."""
    base_headers = _base_headers(request, job, sse, headers)
    key, hit = await service.lookup(job)  # key None while no worker has reported its model version
    if hit is not None:
        return await _answer_hit(service, request, job, hit, sse, base_headers)
    reader = service.open_stream(job, key, request.get("request_id"))
    out = _Relay(request, sse, base_headers)
    async with reader:
        try:
            audio = await out.relay(reader, job)
        except HttpError as exc:
            if out.response is None:
                raise
            # Logged once by the production; this client sees a truncated chunked body, the access line the cause.
            return out.abort(exc.status if exc.status >= 500 else 502)
        except (ConnectionError, asyncio.CancelledError) as exc:
            request[FINAL_STATUS] = CLIENT_CLOSED
            log.info("stream client gone after %d bytes (%s reader) [request=%s]", out.sent, reader.role,
                     request.get("request_id"))
            if isinstance(exc, asyncio.CancelledError):
                raise
            if out.response is not None:  # (a response is a mapping: never test it for truth)
                return out.response
            return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
        except Exception as exc:  # SharedCallCancelled, or a bug here: same rules as any other failure
            log.exception("stream failed after %d bytes [request=%s]", out.sent, request.get("request_id"))
            if out.response is None:
                raise ServiceError(500, f"could not send the {job.format} stream: {exc}") from exc
            return out.abort(500)
        # The first reader to finish accounts for the synthesis; the others shared it (no second count).
        shared = not reader.claim()
    service.totals.answered()
    # Log line, metrics and the saved copy (output.save) like a whole synthesis; its headers (X-Output-URL) come
    # too late for a stream that is already sent.
    await _record(service, request, job, audio, "MISS", audio.meta.get("worker"), shared=shared)
    assert out.response is not None  # relay() prepared it
    return out.response


def _base_headers(request: web.Request, job: SynthesisJob, sse: bool,
                  headers: dict[str, str] | None) -> dict[str, str]:
    base = {h.REQUEST_ID: request.get("request_id", ""), "Cache-Control": "no-store", **(headers or {})}
    if not sse:
        base["Content-Disposition"] = f'inline; filename="speech.{extension_for(job.format)}"'
    return base


class _Relay:
    """One client's response to a production: prepared at its head, written as it is produced."""

    def __init__(self, request: web.Request, sse: bool, base_headers: dict[str, str]) -> None:
        self.request = request
        self.sse = sse
        self.base_headers = base_headers
        self.response: web.StreamResponse | None = None
        self.sent = 0
        self.timed = False  # a speech.timestamps event went out

    async def relay(self, reader: StreamReader[StreamItem, CachedAudio], job: SynthesisJob) -> CachedAudio:
        """Everything ``reader`` yields, then the end of the body; returns the production's whole file."""
        async for item in reader:
            if isinstance(item, StreamHead):
                self.response = await _prepare(self.request, item, self.sse, self.base_headers, None)
            elif isinstance(item, Timings):
                await self._write_timings(item.to_wire())
            else:
                await self._write(item)
                self.sent += len(item)
        audio = reader.result
        if self.response is None:  # a buffered format: everything goes now
            self.response = await _prepare(self.request, head_of(audio), self.sse, self.base_headers,
                                           len(audio.data))
            await self._write(audio.data)
        if not self.timed and "timings" in audio.meta:  # a buffered format: its timestamps come in one event
            await self._write_timings(audio.meta["timings"])
        if self.sse:
            await self.response.write(sse_done(len(job.text), audio.duration_s))
        await self.response.write_eof()
        return audio

    async def _write(self, data: bytes) -> None:
        assert self.response is not None, "a production emits its head before its bytes"
        await self.response.write(sse_delta(data) if self.sse else data)

    async def _write_timings(self, timings: dict) -> None:
        assert self.response is not None, "a production emits its head before its timings"
        if self.sse:
            await self.response.write(sse_timestamps(timings))
            self.timed = True

    def abort(self, final_status: int) -> web.StreamResponse:
        """End a response mid-body: the client sees a truncated chunked stream, never a silently short file; the
        access line and the request metric get ``final_status`` instead of the 200 already sent."""
        assert self.response is not None
        self.request[FINAL_STATUS] = final_status
        transport = self.request.transport
        if transport is not None:
            transport.close()
        return self.response


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


# --- a cache HIT ------------------------------------------------------------------------------------------------


async def _answer_hit(service: StreamingService, request: web.Request, job: SynthesisJob, hit: CachedAudio,
                      sse: bool, base_headers: dict[str, str]) -> web.StreamResponse:
    """A HIT is answered at once, whole; it is recorded before its headers go out (X-Output-URL)."""
    base_headers.update(await _record(service, request, job, hit, "HIT", None))
    response = await _send_hit(request, hit, job, sse, base_headers)
    service.totals.answered()
    return response


def _kept(headers: dict[str, str]) -> dict[str, str]:
    return {k: headers[k] for k in h.MODEL_HEADERS if k in headers}


async def _send_hit(request: web.Request, hit: CachedAudio, job: SynthesisJob, sse: bool,
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
    if job.timestamps and isinstance(hit.meta, dict) and "timings" in hit.meta:
        await response.write(sse_timestamps(hit.meta["timings"]))
    await response.write(sse_done(len(job.text), hit.duration_s))
    await response.write_eof()
    return response


async def _record(service: StreamingService, request: web.Request, job: SynthesisJob, audio: CachedAudio,
                  cache: str, worker: str | None, *, shared: bool = False) -> dict[str, str]:
    """``SynthesisService.record`` (synthesis log, metrics, saved output); best effort, like the cache. ``shared``:
    the audio came from another request's synthesis, which that request accounts for."""
    try:
        return dict(await service.record(job, audio, cache, worker, request_id=request.get("request_id"),
                                         server_id=request["server_id"], shared=shared))
    except Exception as exc:
        log.warning("could not record the streamed result: %s", exc)
        return {}
