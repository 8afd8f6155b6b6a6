"""The synthesis service (daemon process, event loop): what every answer of the public listener goes through,
independent of HTTP. It owns

- the cache key of a job (``cache_key``, from the model version a ready worker reports: ``model_version``);
- single flight through the cache for whole texts (``synthesize``) and the entry points of a stream's production
  (``lookup``, ``open_stream``; the production itself is ``stream_production``);
- dispatch (``run_job``): queue, one retry on another worker, the per-request deadline, and the mapping of
  upstream failures onto the ``RequestError`` / ``ServiceError`` the http layer renders;
- recording of a finished answer (``record``): the saved copy, one ``synthesis.log`` line, metrics, and the offer
  of a sample to online quality scoring (``sampler``);
- the request and synthesis counters (``totals``).

Request-specific values (the request ids) come in as plain strings; nothing here sees an aiohttp request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from inference.text.chunking import split_chunks
from tts_ops.cache import CachedAudio, ResultCache, cache_key
from tts_ops.cache.singleflight import StreamReader
from tts_ops.config import Config
from tts_ops.config.engine_options import render_digest
from tts_ops.logs.synthesis import log_synthesis
from tts_ops.observability.metrics import Metrics
from tts_ops.service import long_text, stream_production
from tts_ops.service.chunk_pipeline import chunk_settings, stream_parallelism
from tts_ops.service.errors import RequestError, ServiceError
from tts_ops.service.stream_production import StreamItem
from tts_ops.service.totals import Totals
from tts_ops.service.voices import engine_default_voice
from tts_ops.storage.output_store import OutputStore
from tts_ops.upstream.balancer import Balancer, NoCapacity, Overloaded
from tts_ops.upstream.client import Synthesis, UpstreamFailed, WorkerLender, WorkerRejected, phonemize, synthesize
from tts_vocab import SynthesisJob
from tts_vocab import headers as h
from tts_vocab.messages import FrontendView
from tts_vocab.timings import Timings

__all__ = ["Dispatch", "QualitySampler", "ReadyWorkers", "Result", "SynthesisService"]

log = logging.getLogger("tts_ops.server")
T = TypeVar("T")


class ReadyWorker(Protocol):
    """A READY worker as the service sees it: the health its last probe reported."""

    @property
    def health(self) -> Mapping[str, Any]: ...


class ReadyWorkers(Protocol):
    """What the service needs of the supervisor: the workers ready to take a job."""

    def ready_workers(self) -> Sequence[ReadyWorker]: ...


class QualitySampler(Protocol):
    """Takes a finished synthesis for online quality scoring, maybe (``tts_ops.quality.QualityMonitor``); never
    waits."""

    def offer(self, job: SynthesisJob, audio: bytes, sample_rate: int, *, request_id: str, engine: str) -> bool: ...


class Dispatch(Protocol):
    """Sends one job to a worker through the balancer (``tts_ops.upstream.client.synthesize``)."""

    def __call__(self, balancer: WorkerLender[Any], job: SynthesisJob, *,
                 admitted: bool = False) -> Awaitable[Synthesis]: ...


@dataclass(frozen=True)
class Result:
    """Audio for the client: from a worker (cache MISS) or from the cache (HIT)."""

    audio: bytes
    content_type: str
    headers: dict[str, str]
    cache: str
    worker_id: str | None
    cached: CachedAudio | None = None
    shared: bool = False  # a MISS that got another request's synthesis (single flight)
    #: The audio's timestamps, for a job that asked for them.
    timings: Timings | None = None


class SynthesisService:
    """Cache key, single flight, dispatch, recording and counters of the public listener."""

    def __init__(self, config: Config, supervisor: ReadyWorkers, balancer: Balancer,
                 cache: ResultCache | None = None, *, output_store: OutputStore | None = None,
                 metrics: Metrics | None = None, dispatch: Dispatch = synthesize,
                 sampler: QualitySampler | None = None) -> None:
        self.config = config
        self.sampler = sampler
        self.supervisor = supervisor
        self.balancer = balancer
        self.cache = cache
        self.output_store = output_store
        self.metrics = metrics
        self._accepting = True
        self.totals = Totals()
        self._dispatch = dispatch
        self._last_model_version: str | None = None
        self._render = render_digest(config)

    def apply(self, config: Config) -> None:
        """Take over a reloaded config: limits, deadline, cache prefix, engine settings and logging are read from
        it per request, so the next request uses them."""
        self.config = config
        self._render = render_digest(config)

    # -- admission -----------------------------------------------------------------------------------------------
    @property
    def accepting(self) -> bool:
        """False from the start of the drain: new requests get 503 (``admit``)."""
        return self._accepting

    def set_accepting(self, accepting: bool) -> None:
        self._accepting = accepting

    def admit(self) -> None:
        """Refuse new work once shutdown began (keep-alive connections can still deliver requests); work already
        admitted, such as the remaining chunks of a stream, carries on until the drain deadline."""
        if not self._accepting:
            raise ServiceError(503, "server is shutting down", headers=self._retry_after())

    # -- whole texts -----------------------------------------------------------------------------------------------
    async def synthesize(self, job: SynthesisJob) -> Result:
        """A whole text to audio, through the cache: the one path every non-streamed synthesis takes. Identical
        requests in flight at the same time share one synthesis (single flight)."""
        key = self.cache_key(job)
        if self.cache is None or key is None:
            audio, status, role = await self._synthesize_uncached(job), "MISS", "leader"
        else:
            audio, status, role = await self.cache.get_or_create(key, lambda: self._synthesize_uncached(job))
        worker = audio.meta.get("worker") if status == "MISS" else None
        headers = {h.CACHE: status, h.SAMPLE_RATE: str(audio.sample_rate),
                   h.AUDIO_DURATION: f"{audio.duration_s:.3f}", **audio.meta.get("headers", {})}
        if worker:
            headers[h.WORKER] = worker
            headers[h.SYNTHESIS_TIME] = f"{audio.meta.get('synthesis_s', 0.0):.3f}"
        timings = Timings.from_wire(audio.meta["timings"]) if job.timestamps and "timings" in audio.meta else None
        return Result(audio.data, audio.content_type, headers, status, worker, audio, shared=role == "follower",
                      timings=timings)

    async def _synthesize_uncached(self, job: SynthesisJob) -> CachedAudio:
        # An SSML document is one script, rendered whole by one worker (it is not plain text to split).
        if self.config.server.parallel_long_text and job.ssml is None:
            max_chars, pause_s = chunk_settings(self.config)
            chunks = split_chunks(job.text, max_chars)
            if long_text.worth_parallel(self.balancer, chunks):
                return await long_text.synthesize_parallel(self, self.balancer, job, chunks, pause_s,
                                                           stream_parallelism(self.supervisor))
        synthesis = await self.run_job(job)
        reply = synthesis.reply
        meta = {"worker": synthesis.worker_id, "synthesis_s": reply.synthesis_s,
                "skipped": [*reply.skipped, *([f"+{reply.more_skipped}"] if reply.more_skipped else [])],
                "headers": reply.model_headers()}
        if reply.timings is not None:
            meta["timings"] = reply.timings.to_wire()
        return CachedAudio(synthesis.audio, synthesis.content_type, reply.sample_rate, reply.duration_s, meta)

    # -- streams -----------------------------------------------------------------------------------------------------
    async def lookup(self, job: SynthesisJob) -> tuple[str | None, CachedAudio | None]:
        """(cache key, cached audio) of a streamed job; the key is None without a cache or while no worker has
        reported its model version. A failing cache is a miss."""
        if self.cache is None:
            return None, None
        key = self.cache_key(job)
        if key is None:
            return None, None
        return key, await stream_production.cache_get(self.cache, key)

    def open_stream(self, job: SynthesisJob, key: str | None, request_id: str | None
                    ) -> StreamReader[StreamItem, CachedAudio]:
        """A reader of the production of ``job`` (shared with identical streams under ``key``); RequestError 400
        when the text has nothing to split into chunks."""
        max_chars, pause_s = chunk_settings(self.config)
        # An SSML document is one chunk: the worker renders it whole (its breaks are exact silences there).
        chunks = [job.text] if job.ssml is not None else split_chunks(job.text, max_chars)
        if not chunks:
            raise RequestError(400, "text contains nothing speakable", param="text")
        plan = stream_production.StreamPlan(job, chunks, pause_s, stream_parallelism(self.supervisor), request_id)
        return stream_production.join(self, self.cache if key is not None else None, key, plan)

    # -- dispatch ------------------------------------------------------------------------------------------------
    async def run_job(self, job: SynthesisJob, *, admitted: bool = False,
                      lender: WorkerLender[Any] | None = None) -> Synthesis:
        """Queue, dispatch with one retry, and enforce the per-request deadline; raises HttpError. ``admitted``:
        part of a request already admitted (a stream's later chunks), so never shed for a full queue. ``lender``:
        where the worker comes from instead of the balancer (a reserved idle worker, ``long_text``)."""
        call = self._dispatch(lender or self.balancer, job, admitted=admitted)
        result = await self._upstream(call, "synthesis")
        if result.attempts > 1:
            self.totals.retried_one()
        return result

    async def frontend_view(self, text: str) -> FrontendView:
        """The phonemizer view of ``text`` from a worker's engine (``POST /frontend``); raises HttpError."""
        return await self._upstream(phonemize(self.balancer, text), "frontend")

    async def _upstream(self, call: Awaitable[T], what: str) -> T:
        """A worker call under the request deadline, its failures mapped onto the errors the http layer renders
        (and counted)."""
        timeout_s = self.config.server.request_timeout_s
        try:
            return await asyncio.wait_for(call, timeout_s)
        except Overloaded as exc:
            self.totals.shed_one()
            raise ServiceError(503, str(exc), headers=self._retry_after()) from None
        except NoCapacity as exc:
            self.totals.failed_one()
            raise ServiceError(503, str(exc), headers=self._retry_after()) from None
        except asyncio.TimeoutError:
            self.totals.timed_out()
            raise ServiceError(504, f"{what} did not finish within {timeout_s:g}s") from None
        except WorkerRejected as exc:
            raise RequestError(exc.status, str(exc)) from None
        except UpstreamFailed as exc:
            self.totals.failed_one()
            log.error("%s failed after retry: %s", what, exc)
            raise ServiceError(502, f"{what} failed: {exc}") from None

    def _retry_after(self) -> dict[str, str]:
        return {h.RETRY_AFTER: str(self.config.server.retry_after_s)}

    # -- the cache key -------------------------------------------------------------------------------------------
    def cache_key(self, job: SynthesisJob) -> str | None:
        """Key of a whole-text job, or None while no ready worker has told us its model version."""
        version = self.model_version()
        if version is None:
            return None
        # The default voice by its id, so a reload that changes it does not serve the old voice.
        voice = job.voice or engine_default_voice(self.config) or "default"
        return cache_key(self.config.cache.prefix, engine=self.config.workers.engine, model_version=version,
                         voice=voice, emotion=job.emotion, speed=job.speed, fmt=job.format,
                         sample_rate=job.sample_rate, text=job.text, timestamps=job.timestamps,
                         render=self._render)

    def model_version(self) -> str | None:
        """The model version a ready worker reports; while none is ready, the last one seen (so cached audio is
        still served when every worker is restarting), None before any worker was ever ready."""
        for worker in self.supervisor.ready_workers():
            version = worker.health.get("model_version")
            if version:
                self._last_model_version = str(version)
                return self._last_model_version
        return self._last_model_version

    # -- recording -----------------------------------------------------------------------------------------------
    async def record(self, job: SynthesisJob, audio: CachedAudio | None, cache: str, worker: str | None, *,
                     request_id: str | None, server_id: str, shared: bool = False) -> dict[str, str]:
        """After a successful answer (whole or streamed): the saved copy when the output store is enabled, one
        synthesis.log line (naming that copy), metrics. Returns extra response headers (the saved file's URL).
        ``server_id`` names the saved copy (never the client's ``request_id``). ``shared``: a MISS that got
        another request's synthesis (single flight); that request counts the synthesis, this one logs
        ``synthesis_s`` 0 and ``shared: true`` and adds no synthesis metrics.
        Best effort: a failing side channel is logged and never fails the request."""
        if audio is None:
            return {}
        name = await self._save(job, audio, request_id, server_id)
        synthesized = cache.upper() != "HIT" and not shared
        synthesis_s = float(audio.meta.get("synthesis_s", 0.0)) if synthesized else 0.0
        entry: dict[str, Any] = {
            "request_id": request_id, "emotion": job.emotion, "speed": job.speed, "voice": job.voice or "default",
            "format": job.format, "audio_s": round(audio.duration_s, 3), "synthesis_s": round(synthesis_s, 3),
            "worker": worker, "cache": cache, "status": 200, "output": name}
        if shared:
            entry["shared"] = True
        if synthesized and len(audio.meta.get("workers") or ()) > 1:
            entry["workers"] = list(audio.meta["workers"])  # a long text synthesized over several workers
        if synthesized and audio.meta.get("skipped"):
            # Characters the voice could not read (code points): never dropped silently.
            entry["skipped"] = list(audio.meta["skipped"])
        try:
            log_synthesis(entry, text=job.text, log_text=self.config.logging.log_text)
            if self.metrics is not None and synthesized:
                self.metrics.observe_synthesis(synthesis_s, audio.duration_s, cache)
            if self.sampler is not None and synthesized:
                self.sampler.offer(job, audio.data, audio.sample_rate, request_id=request_id or server_id,
                                   engine=self.config.workers.engine)
        except Exception as exc:
            log.warning("could not record the synthesis of request %s: %s", request_id, exc)
        return {h.OUTPUT_URL: f"/output/{name}"} if name else {}

    async def _save(self, job: SynthesisJob, audio: CachedAudio, request_id: str | None,
                    server_id: str) -> str | None:
        if self.output_store is None:
            return None
        try:
            return await self.output_store.save_async(server_id, audio.data, job.format)
        except Exception as exc:  # e.g. disk full: the client still gets its audio
            log.warning("could not save the output of request %s: %s", request_id, exc)
            return None
