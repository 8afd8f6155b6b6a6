"""The public front end (aiohttp, daemon process): Web UI, ``POST /tts``, ``GET /health`` and ``GET /ready``.

``/health`` answers the reference deployment's monitor scripts byte for byte: ``{"status":"healthy"}`` while at
least one worker is ready, ``{"status":"unhealthy"}`` with 503 otherwise (and while the daemon drains).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tts_ops.cache import CachedAudio, ResultCache, cache_key
from tts_ops.logs.manager import log_synthesis
from tts_ops.observability.metrics import Metrics
from tts_ops.storage.output_store import OutputStore
from tts_ops.upstream.balancer import Balancer, NoCapacity, Overloaded
from tts_ops.upstream.client import Synthesis, UpstreamFailed, WorkerRejected, synthesize
from tts_ops.http.middleware import MAX_BODY_BYTES, METRICS, json_error, request_context
from tts_ops.http.errors import HttpError, RequestError, ServiceError
from tts_ops.http.validation import check_content_type, engine_default_voice, load_json, parse_tts
from tts_ops.supervisor import Supervisor, WorkerState
from tts_vocab import SynthesisJob, headers as h
from tts_vocab.formats import extension_for

log = logging.getLogger("tts_ops.server")
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
HEALTHY = b'{"status":"healthy"}'
UNHEALTHY = b'{"status":"unhealthy"}'


class FrontEnd:
    """State shared by the public handlers."""

    def __init__(self, config: Any, supervisor: Supervisor, balancer: Balancer,
                 cache: ResultCache | None = None, *, output_store: OutputStore | None = None,
                 metrics: Metrics | None = None) -> None:
        self.config = config
        self.supervisor = supervisor
        self.balancer = balancer
        self.cache = cache
        self.output_store = output_store
        self.metrics = metrics
        self.accepting = True
        self._last_model_version: str | None = None
        # Per request: "requests" as they arrive, "ok" once answered in full (hits included), "client_errors" for a
        # 4xx. Per synthesis attempt (a stream's chunk, a shared synthesis once): shed, failed, timeouts, retried.
        self.totals = {"requests": 0, "ok": 0, "client_errors": 0, "shed": 0, "timeouts": 0, "failed": 0,
                       "retried": 0}

    # -- app -------------------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[request_context], client_max_size=self.config.server.max_body_bytes)
        app[MAX_BODY_BYTES] = self.config.server.max_body_bytes
        if self.metrics is not None:
            app[METRICS] = self.metrics
        app.router.add_get("/", self.handle_index)
        app.router.add_post("/tts", self.handle_tts)
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/ready", self.handle_ready)
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
        if self.output_store is not None:
            app.router.add_get("/output/{name}", self.output_store.handler)
        from tts_ops.http import openai_api  # /v1/*, /openapi.json, API keys on /v1/* and /tts

        openai_api.register(app, self)
        return app

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def handle_health(self, request: web.Request) -> web.Response:
        healthy = self.accepting and bool(self.supervisor.ready_workers())
        return web.Response(body=HEALTHY if healthy else UNHEALTHY, status=200 if healthy else 503,
                            content_type="application/json", headers={"Cache-Control": "no-store"})

    async def handle_ready(self, request: web.Request) -> web.Response:
        counts: dict[str, int] = {state.value: 0 for state in WorkerState if state is not WorkerState.RETIRED}
        for worker in self.supervisor.workers.values():
            counts[worker.state.value] = counts.get(worker.state.value, 0) + 1
        ready = counts["ready"]
        body = {"ready": self.accepting and ready > 0, "accepting": self.accepting,
                "workers": {"ready": ready, "total": len(self.supervisor.workers), "target": self.supervisor.target,
                            "by_state": counts},
                "queue_depth": self.balancer.queue_depth, "in_flight": self.balancer.in_flight,
                "limits": {"max_text_chars": self.config.server.max_text_chars}}
        return web.json_response(body, status=200 if body["ready"] else 503, headers={"Cache-Control": "no-store"})

    # -- synthesis -------------------------------------------------------------------------------------------
    async def handle_tts(self, request: web.Request) -> web.StreamResponse:
        self.totals["requests"] += 1
        try:
            self.admit()
            check_content_type(request.content_type)
            tts = parse_tts(load_json(await request.read()), max_text_chars=self.config.server.max_text_chars,
                            default_voice=engine_default_voice(self.config))
            job = tts.job
            if tts.stream:
                from tts_ops.http.streaming import stream_job

                return await stream_job(self, request, job, sse=False)
            result = await self.synthesize(job, request)
        except HttpError as exc:
            if exc.is_client_error:
                self.totals["client_errors"] += 1
            return json_error(exc.status, str(exc), exc.headers)
        self.totals["ok"] += 1
        headers = dict(result.headers)
        headers.update(await self.record(request, job, result.cached, result.cache, result.worker_id,
                                         shared=result.shared))
        headers["Content-Disposition"] = f'inline; filename="speech.{extension_for(job.format)}"'
        return web.Response(body=result.audio, content_type=result.content_type, headers=headers)

    async def synthesize(self, job: SynthesisJob, request: web.Request) -> Result:
        """A whole text to audio, through the cache: the one path every non-streamed synthesis takes. Identical
        requests in flight at the same time share one synthesis (single flight)."""
        key = self.cache_key(job)
        if self.cache is None or key is None:
            audio, status, role = await self._synthesize_uncached(job), "MISS", "leader"
        else:
            audio, status, role = await self.cache.get_or_create(key, lambda: self._synthesize_uncached(job))
        worker = audio.meta.get("worker") if status == "MISS" else None
        if worker:
            request["worker_id"] = worker
        headers = {h.CACHE: status, h.SAMPLE_RATE: str(audio.sample_rate),
                   h.AUDIO_DURATION: f"{audio.duration_s:.3f}", **audio.meta.get("headers", {})}
        if worker:
            headers[h.WORKER] = worker
            headers[h.SYNTHESIS_TIME] = f"{audio.meta.get('synthesis_s', 0.0):.3f}"
        return Result(audio.data, audio.content_type, headers, status, worker, audio, shared=role == "follower")

    async def _synthesize_uncached(self, job: SynthesisJob) -> CachedAudio:
        synthesis = await self.run_job(job)
        reply = synthesis.reply
        return CachedAudio(synthesis.audio, synthesis.content_type, reply.sample_rate, reply.duration_s,
                           {"worker": synthesis.worker_id, "synthesis_s": reply.synthesis_s,
                            "headers": reply.model_headers()})

    async def record(self, request: web.Request, job: SynthesisJob, audio: CachedAudio | None, cache: str,
                     worker: str | None, *, shared: bool = False) -> dict[str, str]:
        """After a successful answer (whole or streamed): the saved copy when the output store is enabled, one
        synthesis.log line (naming that copy), metrics. Returns extra response headers (the saved file's URL).
        ``shared``: a MISS that got another request's synthesis (single flight); that request counts the
        synthesis, this one logs ``synthesis_s`` 0 and ``shared: true`` and adds no synthesis metrics.
        Best effort: a failing side channel is logged and never fails the request."""
        if audio is None:
            return {}
        name = None
        if self.output_store is not None:
            try:
                # Named from the server's own id, never from the client's X-Request-ID.
                name = await self.output_store.save_async(request["server_id"], audio.data, job.format)
            except Exception as exc:  # e.g. disk full: the client still gets its audio
                log.warning("could not save the output of request %s: %s", request.get("request_id"), exc)
        synthesized = cache.upper() != "HIT" and not shared
        synthesis_s = float(audio.meta.get("synthesis_s", 0.0)) if synthesized else 0.0
        entry = {"request_id": request.get("request_id"), "emotion": job.emotion, "speed": job.speed,
                 "voice": job.voice or "default", "format": job.format,
                 "audio_s": round(audio.duration_s, 3), "synthesis_s": round(synthesis_s, 3),
                 "worker": worker, "cache": cache, "status": 200, "output": name}
        if shared:
            entry["shared"] = True
        try:
            log_synthesis(entry, text=job.text, log_text=self.config.logging.log_text)
            if self.metrics is not None and synthesized:
                self.metrics.observe_synthesis(synthesis_s, audio.duration_s, cache)
        except Exception as exc:
            log.warning("could not record the synthesis of request %s: %s", request.get("request_id"), exc)
        return {h.OUTPUT_URL: f"/output/{name}"} if name else {}

    def cache_key(self, job: SynthesisJob) -> str | None:
        """Key of a whole-text job, or None while no ready worker has told us its model version."""
        version = self.model_version()
        if version is None:
            return None
        # The default voice by its id, so a reload that changes it does not serve the old voice.
        voice = job.voice or engine_default_voice(self.config) or "default"
        return cache_key(self.config.cache.prefix, engine=self.config.workers.engine, model_version=version,
                         voice=voice, emotion=job.emotion, speed=job.speed, fmt=job.format,
                         sample_rate=job.sample_rate, text=job.text)

    def model_version(self) -> str | None:
        """The model version a ready worker reports; while none is ready, the last one seen (so cached audio is
        still served when every worker is restarting), None before any worker was ever ready."""
        for worker in self.supervisor.ready_workers():
            version = worker.health.get("model_version")
            if version:
                self._last_model_version = version
                return version
        return self._last_model_version

    def admit(self) -> None:
        """Refuse new work once shutdown began (keep-alive connections can still deliver requests); work already
        admitted, such as the remaining chunks of a stream, carries on until the drain deadline."""
        if not self.accepting:
            raise ServiceError(503, "server is shutting down", headers=self._retry_after())

    async def run_job(self, job: SynthesisJob, *, admitted: bool = False) -> Synthesis:
        """Queue, dispatch with one retry, and enforce the per-request deadline; raises HttpError. ``admitted``:
        part of a request already admitted (a stream's later chunks), so never shed for a full queue."""
        try:
            result = await asyncio.wait_for(synthesize(self.balancer, job, admitted=admitted),
                                            self.config.server.request_timeout_s)
        except Overloaded as exc:
            self.totals["shed"] += 1
            raise ServiceError(503, str(exc), headers=self._retry_after()) from None
        except NoCapacity as exc:
            self.totals["failed"] += 1
            raise ServiceError(503, str(exc), headers=self._retry_after()) from None
        except asyncio.TimeoutError:
            self.totals["timeouts"] += 1
            raise ServiceError(504, f"synthesis did not finish within "
                                    f"{self.config.server.request_timeout_s:g}s") from None
        except WorkerRejected as exc:
            raise RequestError(exc.status, str(exc)) from None
        except UpstreamFailed as exc:
            self.totals["failed"] += 1
            log.error("synthesis failed after retry: %s", exc)
            raise ServiceError(502, f"synthesis failed: {exc}") from None
        if result.attempts > 1:
            self.totals["retried"] += 1
        return result

    def _retry_after(self) -> dict[str, str]:
        return {h.RETRY_AFTER: str(self.config.server.retry_after_s)}


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

