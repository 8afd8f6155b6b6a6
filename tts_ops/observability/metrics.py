"""Prometheus metrics for the supervisor daemon (daemon process, on its event loop): ``GET /metrics``.

Two kinds of metric live in one dedicated ``CollectorRegistry`` per ``Metrics`` instance (never the global
``REGISTRY``, so tests and a reloaded app can create several without "Duplicated timeseries" errors):

* Event-driven, recorded by the front end as requests finish: request counts and latency (queued as plain tuples
  and counted at the next scrape, or every PENDING_REQUESTS_MAX requests, which keeps prometheus-client's locks
  off the hit path; a scrape never sees a stale count), synthesis time, audio produced and real-time factor.
* Pull-based, read by ``_Collector`` from the supervisor / balancer / cache / maintenance / log manager given to
  the constructor, at scrape time, so a gauge can never be stale and those objects need no knowledge of
  Prometheus (each is typed by the small ``Protocol`` below that says what is read). Maintenance counters are
  read this way too (from ``maintenance.counters`` and ``log_manager.stats()``) rather than pushed with
  ``observe_*`` calls: those modules already keep the totals, and a second copy here could drift from them.

Plus ``process_*`` metrics of the daemon process itself (``ProcessCollector``; Linux only, empty elsewhere).

Choices worth knowing when reading dashboards:

* ``tts_ops_redis_up`` is exported only when the cache backend is ``redis``. With the in-memory backend it is
  absent (not 0), so an alert on ``tts_ops_redis_up == 0`` never fires on a deployment that has no Redis.
* Synthesis metrics describe engine work, so a cache hit records none of them (hits are in
  ``tts_ops_cache_hits_total``); any other cache value (miss, bypass, disabled) was synthesised and is recorded.
* ``tts_ops_build_info`` (always 1) carries the package version, Python version and the engine and model version
  the READY workers report (one series per distinct pair, so a rolling move onto a new model shows both for a
  moment); with no READY worker it keeps the last pair known, ``unknown`` before the first.
* The ``worker`` label is the worker's slot (``w1..wN``), which a replacement takes over, so series survive
  restarts, recycles and rolling restarts. While a replace-first successor boots, its slot has two handles: the
  per-worker series show the slot's current one (``Supervisor.current_workers``: the serving predecessor until
  the successor is READY, then the successor), never both, so labels are never duplicated. ``tts_ops_workers``
  counts every handle, so during a replacement the sum over states is briefly the target + 1.
* ``tts_ops_disk_guard_active`` is 1 while the disk guard holds saving paused (a low-space episode).
* ``tts_ops_mos`` (by engine and emotion), ``tts_ops_mos_low_quality_total`` and
  ``tts_ops_mos_samples_dropped_total`` (by reason) come from the quality monitor's events (``tts_ops.quality``):
  present, at 0 or empty, even with sampling off.
* No ``*_created`` series: ``disable_created_metrics()`` at import. It is process-wide, which is what the daemon
  wants (only its own registries live in it); the timestamps only duplicate what ``rate()`` ignores anyway.
* ``endpoint`` labels are capped (``MAX_ENDPOINTS``) and overflow goes to ``other``: callers should pass the
  route, not the raw path, but a mistake must not turn 404 scans into unbounded series.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import platform
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from tts_ops.observability.sources import (
    MaintenanceCounters,
    PoolGauges,
    QueueGauges,
    StatsSource,
)
from tts_ops.quality.monitor import DROP_REASONS
from tts_ops.supervisor.states import WorkerState

log = logging.getLogger("tts_ops.metrics")
disable_created_metrics()

UNKNOWN = "unknown"

# A short phrase is ~50 ms on the bundled voice, a long paragraph on Sambert or a request queued behind a busy
# pool can take a minute or more; the upper buckets sit near the request timeouts so timeouts stay visible.
REQUEST_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
SYNTHESIS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
# RTF = synthesis time / audio duration; < 1 is faster than real time. Fine resolution below 1 (where a healthy
# CPU engine lives), coarse above it, where the only question is "how much too slow".
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
# Predicted MOS, 1 bad .. 5 excellent: quarter points, fine enough to see a preset move by 0.2.
MOS_BUCKETS = (1.5, 2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 4.25, 4.5, 5.0)

MAX_ENDPOINTS = 64
#: Requests queued by ``Metrics.observe_request`` before they are applied without waiting for a scrape.
PENDING_REQUESTS_MAX = 1024
OVERFLOW_ENDPOINT = "other"


class Metrics:
    """A source left out (None) exports none of its metrics; with ``maintenance`` but no ``log_manager``
    (stderr-only logging) rotations and pruning count as 0."""

    def __init__(self, *, supervisor: PoolGauges | None = None, balancer: QueueGauges | None = None,
                 cache: StatsSource | None = None, maintenance: MaintenanceCounters | None = None,
                 log_manager: StatsSource | None = None) -> None:
        self.supervisor = supervisor
        self.balancer = balancer
        self.cache = cache
        self.maintenance = maintenance
        self.log_manager = log_manager
        self.registry = CollectorRegistry()
        self._endpoints: set[str] = set()
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        # Requests observed but not yet counted: applied at the next scrape (or every PENDING_REQUESTS_MAX).
        self._pending: list[tuple[str, int, float]] = []
        # First in the registry, which collects in registration order: the request metrics are up to date before
        # they are read.
        self.registry.register(_PendingRequests(self))
        self.version = _package_version()
        # (engine, model_version) pairs last reported by READY workers: the build_info labels.
        self.builds: list[tuple[str, str]] = [(UNKNOWN, UNKNOWN)]
        r = self.registry
        self.requests = Counter("tts_ops_requests", "HTTP requests answered, by endpoint and status code.",
                                ["endpoint", "status"], registry=r)
        self.request_latency = Histogram("tts_ops_request_latency_seconds",
                                         "Time from request received to response ready, by endpoint.",
                                         ["endpoint"], buckets=REQUEST_LATENCY_BUCKETS, registry=r)
        self.synthesis = Histogram("tts_ops_synthesis_seconds",
                                   "Engine synthesis time per request that was not a cache hit.",
                                   buckets=SYNTHESIS_BUCKETS, registry=r)
        self.audio = Counter("tts_ops_audio_seconds", "Seconds of audio synthesised (cache hits excluded).",
                             registry=r)
        self.rtf = Histogram("tts_ops_real_time_factor",
                             "Synthesis time divided by audio duration (cache hits excluded).",
                             buckets=RTF_BUCKETS, registry=r)
        # Event-driven like the synthesis metrics: the scorer's results arrive as events, and a histogram can only
        # be built from the observations themselves. The quality monitor keeps its own totals for /admin/status.
        self.mos = Histogram("tts_ops_mos", "Predicted MOS (Distill-MOS, 1..5) of sampled syntheses.",
                             ["engine", "emotion"], buckets=MOS_BUCKETS, registry=r)
        self.mos_dropped = Counter("tts_ops_mos_samples_dropped",
                                   "Quality samples that got no score, by reason (queue_full, scorer_failed, ...).",
                                   ["reason"], registry=r)
        for reason in DROP_REASONS:  # every reason exported at 0 from the start
            self.mos_dropped.labels(reason=reason)
        self.mos_low = Counter("tts_ops_mos_low_quality", "Sampled syntheses scored below quality.min_mos.",
                               ["engine", "emotion"], registry=r)
        ProcessCollector(registry=r)
        r.register(_Collector(self))

    # -- event-driven ----------------------------------------------------------------------------------------
    def observe_request(self, endpoint: str, status: int, latency_s: float) -> None:
        # Appended, counted at the next scrape: a counter and a histogram update take locks and search buckets,
        # a measurable share of a cache hit's or /health's CPU (bench/frontend_wrk.py); nobody reads them between
        # scrapes. Bounded: a long time without a scrape applies them every PENDING_REQUESTS_MAX requests.
        self._pending.append((endpoint, status, latency_s))
        if len(self._pending) >= PENDING_REQUESTS_MAX:
            self.apply_pending()

    @property
    def pending_requests(self) -> int:
        """Requests observed and not yet counted (at most PENDING_REQUESTS_MAX - 1)."""
        return len(self._pending)

    def apply_pending(self) -> None:
        """Count the requests observed since the last call (the registry's first collector calls it)."""
        pending, self._pending = self._pending, []
        for endpoint, status, latency_s in pending:
            # The labelled children are looked up once per (endpoint, status): labels() builds and locks per call.
            children = self._request_children.get((endpoint, status))
            if children is None:
                label = self._endpoint_label(endpoint)
                children = (self.requests.labels(endpoint=label, status=str(int(status))),
                            self.request_latency.labels(endpoint=label))
                self._request_children[(endpoint, status)] = children
            children[0].inc()
            children[1].observe(max(0.0, latency_s))

    def observe_synthesis(self, synthesis_s: float, audio_s: float, cache: str) -> None:
        if str(cache).strip().lower() == "hit":
            return
        self.synthesis.observe(max(0.0, synthesis_s))
        if audio_s > 0:
            self.audio.inc(audio_s)
            # RTF is undefined for empty audio; skipping beats recording an infinite value.
            self.rtf.observe(max(0.0, synthesis_s) / audio_s)

    def observe_mos(self, engine: str, emotion: str, mos: float) -> None:
        self.mos.labels(engine=engine, emotion=emotion).observe(mos)

    def mos_sample_dropped(self, reason: str) -> None:
        self.mos_dropped.labels(reason=reason).inc()

    def mos_low_quality(self, engine: str, emotion: str) -> None:
        self.mos_low.labels(engine=engine, emotion=emotion).inc()

    def _endpoint_label(self, endpoint: str) -> str:
        if endpoint in self._endpoints:
            return endpoint
        if len(self._endpoints) >= MAX_ENDPOINTS:
            return OVERFLOW_ENDPOINT
        self._endpoints.add(endpoint)
        return endpoint

    # -- exposition ------------------------------------------------------------------------------------------
    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def build_app(self) -> web.Application:
        """The unauthenticated listener of ``metrics.public``: ``GET /metrics`` and nothing else."""
        app = web.Application()
        app.router.add_get("/metrics", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        """``GET /metrics``. Rendering is synchronous on purpose: the collector reads objects owned by the event
        loop, and a scrape is a few hundred lines of text."""
        body, content_type = self.render()
        return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def _package_version() -> str:
    try:
        return importlib.metadata.version("tts-ops")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return UNKNOWN


def _num(value: Any) -> float:
    """Missing or junk values count as 0: a half-initialised source must not break the whole scrape."""
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


class _PendingRequests:
    """Applies the requests ``Metrics.observe_request`` queued before anything is read; exports nothing itself."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        self.m.apply_pending()
        return []


class _Collector:
    """Reads the sources at scrape time. Each source is collected separately and any error is logged
    and skipped, so one broken source (e.g. Redis stats raising) still leaves every other metric on /metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def _sources(self) -> Iterable[tuple[str, Callable[[], Iterable[Metric]]]]:
        """(name, reader) of every source present, in exposition order."""
        m = self.m
        if m.balancer is not None:
            yield "balancer", functools.partial(self._balancer, m.balancer)
        if m.supervisor is not None:
            yield "supervisor", functools.partial(self._supervisor, m.supervisor)
        if m.cache is not None:
            yield "cache", functools.partial(self._cache, m.cache)
        if m.maintenance is not None:
            yield "maintenance", functools.partial(self._maintenance, m.maintenance)

    def collect(self) -> Iterable[Metric]:
        yield self._build_info()
        for name, reader in self._sources():
            try:
                # Built fully before yielding, so a failure never leaves half a source in the output.
                families = list(reader())
            except Exception as exc:
                log.warning("metrics: reading %s failed: %r", name, exc)
                continue
            yield from families

    def _build_info(self) -> Metric:
        m = self.m
        if m.supervisor is not None:
            try:
                known = sorted({(str(w.health.get("engine") or UNKNOWN), str(w.health.get("model_version") or UNKNOWN))
                                for w in m.supervisor.workers.values() if w.state is WorkerState.READY})
            except Exception as exc:
                log.warning("metrics: reading the workers' build failed: %r", exc)
                known = []
            if known:
                m.builds = known
        info = GaugeMetricFamily("tts_ops_build_info", "Always 1: daemon version, Python, and the engine and model "
                                 "version the READY workers report.",
                                 labels=["version", "engine", "model_version", "python"])
        for engine, model_version in m.builds:
            info.add_metric([m.version, engine, model_version, platform.python_version()], 1.0)
        return info

    @staticmethod
    def _balancer(balancer: QueueGauges) -> Iterable[Metric]:
        yield GaugeMetricFamily("tts_ops_queue_depth", "Requests waiting for a free worker.",
                                value=_num(balancer.queue_depth))
        yield GaugeMetricFamily("tts_ops_in_flight", "Requests being synthesised by workers right now.",
                                value=_num(balancer.in_flight))
        yield GaugeMetricFamily("tts_ops_queue_limit", "Most requests that may wait (server.queue_limit); beyond it "
                                "requests are shed with 503.", value=_num(balancer.queue_limit))

    @staticmethod
    def _supervisor(supervisor: PoolGauges) -> Iterable[Metric]:
        workers = list(supervisor.workers.values())
        # Every state is exported, 0 included, so "workers{state="failed"} > 0" has a series to compare against
        # before the first failure, and sum() over states is always the pool size.
        counts = {state.value: 0 for state in WorkerState}
        for w in workers:
            counts[w.state.value] += 1
        states = GaugeMetricFamily("tts_ops_workers", "Workers by lifecycle state.", labels=["state"])
        for state, n in counts.items():
            states.add_metric([state], n)
        yield states

        rss = GaugeMetricFamily("tts_ops_worker_rss_bytes", "Resident memory of each worker process "
                                "(sampled by the supervisor watchdog; absent until first sampled).",
                                labels=["worker"])
        served = CounterMetricFamily("tts_ops_worker_served", "Requests completed by each worker.",
                                     labels=["worker"])
        for w in supervisor.current_workers():  # one per slot: see the module docstring
            if w.rss_bytes is not None:
                rss.add_metric([str(w.id)], _num(w.rss_bytes))
            served.add_metric([str(w.id)], _num(w.served))
        yield rss
        yield served

        restarts = CounterMetricFamily("tts_ops_worker_restarts", "Worker restarts and recycles, by reason.",
                                       labels=["reason"])
        for reason, n in dict(supervisor.restarts_by_reason).items():
            restarts.add_metric([str(reason)], _num(n))
        yield restarts

    @staticmethod
    def _cache(cache: StatsSource) -> Iterable[Metric]:
        stats = cache.stats() or {}
        for key, help_text in (("hits", "Synthesis cache hits."), ("misses", "Synthesis cache misses."),
                               ("errors", "Synthesis cache backend errors (the request still succeeds).")):
            yield CounterMetricFamily(f"tts_ops_cache_{key}", help_text, value=_num(stats.get(key)))
        if stats.get("backend") == "redis":
            yield GaugeMetricFamily("tts_ops_redis_up", "1 if the Redis cache backend is reachable, else 0.",
                                    value=1.0 if stats.get("up") else 0.0)

    def _maintenance(self, maintenance: MaintenanceCounters) -> Iterable[Metric]:
        counters = maintenance.counters or {}
        runs = counters.get("runs") or {}
        # Rotations and keep-N pruning happen inside the log manager (a rotate_logs run in size mode is only a
        # size check, and pruning runs in its background thread), so its own counters are the truth for those.
        log_manager = self.m.log_manager  # None: stderr-only logging
        logs = (log_manager.stats() or {}) if log_manager is not None else {}
        yield CounterMetricFamily("tts_ops_log_rotations", "Log files rotated.", value=_num(logs.get("rotations")))
        yield CounterMetricFamily("tts_ops_cleanup_runs", "Cleanup runs.", value=_num(runs.get("cleanup")))
        yield CounterMetricFamily(
            "tts_ops_files_deleted", "Files deleted by cleanup, the disk guard and rotated-log pruning.",
            value=_num(counters.get("files_deleted")) + _num(logs.get("pruned_files")))
        yield CounterMetricFamily(
            "tts_ops_bytes_freed", "Bytes freed by cleanup, the disk guard and rotated-log pruning.",
            value=_num(counters.get("bytes_freed")) + _num(logs.get("pruned_bytes")))
        failures = CounterMetricFamily("tts_ops_maintenance_failures", "Failed maintenance runs, by task.",
                                       labels=["task"])
        for task, n in dict(counters.get("failures") or {}).items():
            failures.add_metric([str(task)], _num(n))
        yield failures
        yield GaugeMetricFamily("tts_ops_disk_guard_active", "1 while the disk guard holds saving paused (low free "
                                "space on the output or log disk), else 0.",
                                value=1.0 if maintenance.output_store.paused else 0.0)
