"""The public routes (aiohttp, daemon process): Web UI, ``POST /tts``, ``GET /health``, ``GET /ready``, the static
files and the saved outputs, and the app that also carries the OpenAI routes. Synthesis itself is the
``SynthesisService`` (``tts_ops.service.synthesis``) these handlers call; ``FrontEnd`` builds it and adapts it to
requests and responses.

``/health`` answers the reference deployment's monitor scripts byte for byte: ``{"status":"healthy"}`` while at
least one worker is ready, ``{"status":"unhealthy"}`` with 503 otherwise.

Draining (SIGTERM, ``POST /admin/drain``): ``/health`` and ``/ready`` answer 503 at once while requests are still
served, and every answer carries ``Connection: close`` so a load balancer's keep-alive connections end after their
current request instead of being cut when the listener closes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from aiohttp import hdrs, web

from tts_ops.cache import ResultCache
from tts_ops.config import Config
from tts_ops.http.errors import HttpError
from tts_ops.http.middleware import MAX_BODY_BYTES, METRICS, json_error, readable_json, request_context
from tts_ops.http.openai import routes as openai_routes
from tts_ops.http.streaming import stream_job
from tts_ops.http.validation import (
    TtsRequest,
    check_content_type,
    check_timestamps,
    engine_default_voice,
    load_json,
    parse_frontend,
    parse_tts_body,
)
from tts_ops.observability.metrics import Metrics
from tts_ops.service.captions import captions, timed_body
from tts_ops.service.errors import ServiceError
from tts_ops.service.synthesis import Dispatch, QualitySampler, ReadyWorker, Result, SynthesisService
from tts_ops.service.totals import Totals
from tts_ops.storage.output_store import OutputStore
from tts_ops.supervisor import WorkerState
from tts_ops.upstream.balancer import Balancer
from tts_ops.upstream.client import synthesize
from tts_vocab.formats import extension_for
from tts_vocab.timings import CAPTION_FORMATS

__all__ = ["FrontEnd", "Result", "WorkerPool"]

log = logging.getLogger("tts_ops.server")
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
HEALTHY = b'{"status":"healthy"}'
UNHEALTHY = b'{"status":"unhealthy"}'
HEALTH_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}
#: What GET /summary shows of the cache stats (never its URL).
SUMMARY_CACHE_KEYS = ("backend", "up", "hits", "misses", "hit_ratio")


class PoolWorker(ReadyWorker, Protocol):
    @property
    def state(self) -> WorkerState: ...

    # Read by GET /summary only.
    @property
    def id(self) -> str: ...

    @property
    def restarts(self) -> int: ...

    @property
    def rss_bytes(self) -> int | None: ...


class WorkerPool(Protocol):
    """What the public routes need of the supervisor: the workers, the READY ones and the target count."""

    @property
    def workers(self) -> Mapping[str, PoolWorker]: ...

    @property
    def target(self) -> int: ...

    def ready_workers(self) -> Sequence[PoolWorker]: ...


class FrontEnd:
    """The public listener's routes around one ``SynthesisService`` (``service``)."""

    def __init__(self, config: Config, supervisor: WorkerPool, balancer: Balancer,
                 cache: ResultCache | None = None, *, output_store: OutputStore | None = None,
                 metrics: Metrics | None = None, dispatch: Dispatch = synthesize,
                 sampler: QualitySampler | None = None) -> None:
        """``dispatch``: how a job reaches a worker; tests pass a stand-in for the worker call. ``sampler``: online
        quality scoring of finished syntheses."""
        self.service = SynthesisService(config, supervisor, balancer, cache, output_store=output_store,
                                        metrics=metrics, dispatch=dispatch, sampler=sampler)
        self.supervisor = supervisor
        self.balancer = balancer
        self.output_store = output_store
        self.metrics = metrics
        self._draining = False

    def apply(self, config: Config) -> None:
        """Take over a reloaded config (SIGHUP): the service and these routes read it per request."""
        self.service.apply(config)

    @property
    def config(self) -> Config:
        return self.service.config

    @property
    def cache(self) -> ResultCache | None:
        return self.service.cache

    @property
    def totals(self) -> Totals:
        """The request and synthesis counters (``/admin/status`` reads ``dict(frontend.totals)``)."""
        return self.service.totals

    @property
    def accepting(self) -> bool:
        """False from the start of the drain: new requests get 503."""
        return self.service.accepting

    def set_accepting(self, accepting: bool) -> None:
        """The daemon's lifecycle decides: False from the start of the drain (new requests get 503)."""
        self.service.set_accepting(accepting)

    @property
    def draining(self) -> bool:
        """True from the start of the drain: health checks fail, keep-alive connections are closed."""
        return self._draining

    def set_draining(self, draining: bool) -> None:
        """The daemon's lifecycle decides (DRAINING and after)."""
        self._draining = draining

    @property
    def healthy(self) -> bool:
        return self.accepting and not self._draining and bool(self.supervisor.ready_workers())

    async def _close_when_draining(self, request: web.Request, response: web.StreamResponse) -> None:
        if self._draining:
            # The hook runs after aiohttp chose the headers, so the header is set here as well as the close.
            response.force_close()
            response.headers[hdrs.CONNECTION] = "close"

    # -- app -------------------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[request_context], client_max_size=self.config.server.max_body_bytes)
        app[MAX_BODY_BYTES] = self.config.server.max_body_bytes
        app.on_response_prepare.append(self._close_when_draining)
        if self.metrics is not None:
            app[METRICS] = self.metrics
        app.router.add_get("/", self.handle_index)
        app.router.add_post("/tts", self.handle_tts)
        app.router.add_post("/frontend", self.handle_frontend)
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/ready", self.handle_ready)
        app.router.add_get("/summary", self.handle_summary)
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
        if self.output_store is not None:
            app.router.add_get("/output/{name}", self.output_store.handler)
        # /v1/*, /openapi.json, API keys on /v1/* and /tts: the OpenAI routes use the service (config, totals,
        # admit, and stream_job's StreamingService).
        openai_routes.register(app, self.service)
        return app

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def handle_health(self, request: web.Request) -> web.Response:
        healthy = self.healthy
        # Headers as a plain dict (no content_type= argument for aiohttp to parse and render): monitors call this
        # many times a second, and every /health answer pays for it (bench/frontend_wrk.py).
        return web.Response(body=HEALTHY if healthy else UNHEALTHY, status=200 if healthy else 503,
                            headers=HEALTH_HEADERS)

    async def handle_ready(self, request: web.Request) -> web.Response:
        counts: dict[str, int] = {state.value: 0 for state in WorkerState if state is not WorkerState.RETIRED}
        for worker in self.supervisor.workers.values():
            counts[worker.state.value] = counts.get(worker.state.value, 0) + 1
        ready = counts["ready"]
        body = {"ready": self.healthy, "accepting": self.accepting, "draining": self._draining,
                "workers": {"ready": ready, "total": len(self.supervisor.workers), "target": self.supervisor.target,
                            "by_state": counts},
                "queue_depth": self.balancer.queue_depth, "in_flight": self.balancer.in_flight,
                "limits": {"max_text_chars": self.config.server.max_text_chars}}
        return web.json_response(body, status=200 if body["ready"] else 503, headers={"Cache-Control": "no-store"})

    async def handle_summary(self, request: web.Request) -> web.Response:
        """The Web UI's ops panel: workers (id, state, restarts, RSS), queue, cache hit ratio and whether an API
        key is needed. Public, so nothing secret: no keys or tokens, no paths, no cache URL, no pids."""
        workers = [{"id": w.id, "state": w.state.value, "restarts": w.restarts,
                    "rss_mb": round(w.rss_bytes / 2**20, 1) if w.rss_bytes else None}
                   for w in sorted(self.supervisor.workers.values(), key=lambda w: (len(w.id), w.id))]  # w2 < w10
        cache = self.cache.stats() if self.cache is not None else None
        body = {"accepting": self.accepting, "workers": workers, "target": self.supervisor.target,
                "queue_depth": self.balancer.queue_depth, "in_flight": self.balancer.in_flight,
                "cache": None if cache is None else {key: cache[key] for key in SUMMARY_CACHE_KEYS},
                "api_key_required": bool(self.config.server.api_keys),
                "limits": {"max_text_chars": self.config.server.max_text_chars}}
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    # -- synthesis -------------------------------------------------------------------------------------------
    async def handle_frontend(self, request: web.Request) -> web.Response:
        """The phonemizer view: what the model would be given for a text (normalised text, per-chunk pinyin as
        sent — sandhi applied — and symbols), answered by a worker's engine. Counted in the totals like any
        request."""
        self.service.totals.request()
        try:
            self.service.admit()
            check_content_type(request.content_type)
            text = parse_frontend(load_json(await request.read()), max_text_chars=self.config.server.max_text_chars)
            view = await self.service.frontend_view(text)
        except HttpError as exc:
            if exc.is_client_error:
                self.service.totals.client_error()
            return json_error(exc.status, str(exc), exc.headers)
        self.service.totals.answered()
        return web.json_response(view.public(), dumps=readable_json)

    async def handle_tts(self, request: web.Request) -> web.StreamResponse:
        service = self.service
        service.totals.request()
        try:
            service.admit()
            check_content_type(request.content_type)
            tts = parse_tts_body(await request.read(), max_text_chars=self.config.server.max_text_chars,
                                 default_voice=engine_default_voice(self.config))
            job = tts.job
            check_timestamps(self.config.workers.engine, job)
            if tts.stream:
                # Timestamps come as events, so a timed stream is Server-Sent Events (see the README).
                return await stream_job(service, request, job, sse=job.timestamps)
            result = await service.synthesize(job)
            if job.timestamps and result.timings is None:
                raise ServiceError(502, "the worker sent no timestamps")
        except HttpError as exc:
            if exc.is_client_error:
                service.totals.client_error()
            return json_error(exc.status, str(exc), exc.headers)
        if result.worker_id:
            request["worker_id"] = result.worker_id
        service.totals.answered()
        headers = dict(result.headers)
        headers.update(await service.record(job, result.cached, result.cache, result.worker_id,
                                            request_id=request.get("request_id"), server_id=request["server_id"],
                                            shared=result.shared))
        if job.timestamps:
            return _timed_response(tts, result, headers)
        headers["Content-Disposition"] = f'inline; filename="speech.{extension_for(job.format)}"'
        return web.Response(body=result.audio, content_type=result.content_type, headers=headers)


def _timed_response(tts: TtsRequest, result: Result, headers: dict[str, str]) -> web.Response:
    """``"captions"``: the caption file; ``"timestamps"``: JSON with the audio in base64 and its timestamps."""
    assert result.timings is not None and result.cached is not None  # handle_tts checked; a result always has it
    if tts.captions is not None:
        content_type, extension = CAPTION_FORMATS[tts.captions]
        headers["Content-Disposition"] = f'inline; filename="speech.{extension}"'
        return web.Response(text=captions(result.timings.chars, tts.captions), content_type=content_type,
                            charset="utf-8", headers=headers)
    body = timed_body(result.audio, tts.job.format, result.cached.sample_rate, result.cached.duration_s,
                      result.timings)
    return web.json_response(body, headers=headers, dumps=readable_json)
