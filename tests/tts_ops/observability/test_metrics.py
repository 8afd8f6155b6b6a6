"""Metrics module: event counters, pull-based collector over stand-in sources, exposition and /metrics."""

from __future__ import annotations

import importlib.metadata
import platform

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tts_ops.observability.metrics import MAX_ENDPOINTS, PENDING_REQUESTS_MAX, Metrics
from tts_ops.supervisor import Supervisor, WorkerHandle, WorkerSpec
from tts_ops.supervisor.states import WorkerState


class FakeWorker:
    def __init__(self, worker_id: str, state: WorkerState, rss_bytes: int | None, served: int = 0) -> None:
        self.id, self.state, self.rss_bytes, self.served, self.in_flight = worker_id, state, rss_bytes, served, 0
        self.health: dict[str, object] = (
            {"engine": "fastspeech2-baker", "model_version": "baker-1"} if state is WorkerState.READY else {})


class FakeSupervisor:
    def __init__(self) -> None:
        self.workers = {w.id: w for w in (
            FakeWorker("w1", WorkerState.READY, 100 * 2**20, served=7),
            FakeWorker("w2", WorkerState.READY, 200 * 2**20, served=3),
            FakeWorker("w3", WorkerState.STARTING, None),
            FakeWorker("w4", WorkerState.BACKOFF, None, served=1),
        )}
        self.restarts_by_reason = {"crash": 2, "recycle": 1}

    def current_workers(self) -> list[FakeWorker]:
        return list(self.workers.values())  # one handle per slot here; the real rule is tested below


class FakeBalancer:
    queue_depth = 5
    in_flight = 2
    queue_limit = 8


class FakeCache:
    def __init__(self, stats: dict) -> None:
        self._stats = stats

    def stats(self) -> dict:
        return self._stats


class FakeLogManager:
    def stats(self) -> dict:
        return {"rotations": 2, "pruned_files": 3, "pruned_bytes": 1000}


class FakeStore:
    paused = False


class FakeMaintenance:
    output_store = FakeStore()
    # 40 rotate_logs runs (size checks) but only 2 real rotations: the metric must say 2.
    counters = {"runs": {"rotate_logs": 40, "cleanup": 3, "disk_guard": 9}, "failures": {"cleanup": 1},
                "files_deleted": 12, "bytes_freed": 4096}


def scrape(metrics: Metrics) -> dict[str, dict[tuple, float]]:
    """sample name -> {sorted label items: value}, parsed the way Prometheus would."""
    body, _ = metrics.render()
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def full_metrics(**cache_stats) -> Metrics:
    return Metrics(supervisor=FakeSupervisor(), balancer=FakeBalancer(),
                   cache=FakeCache(cache_stats or {"backend": "redis", "up": True, "hits": 10, "misses": 4,
                                                   "errors": 1}),
                   maintenance=FakeMaintenance(), log_manager=FakeLogManager())


def test_request_counters_and_latency_histogram():
    m = Metrics()
    for _ in range(3):
        m.observe_request("/tts", 200, 0.3)
    m.observe_request("/tts", 400, 0.002)
    m.observe_request("/health", 200, 0.001)
    m.observe_request("/health", 200, 0.001)
    s = scrape(m)
    assert s["tts_ops_requests_total"] == {
        (("endpoint", "/tts"), ("status", "200")): 3,
        (("endpoint", "/tts"), ("status", "400")): 1,
        (("endpoint", "/health"), ("status", "200")): 2,
    }
    counts = s["tts_ops_request_latency_seconds_count"]
    assert counts == {(("endpoint", "/tts"),): 4, (("endpoint", "/health"),): 2}
    assert s["tts_ops_request_latency_seconds_bucket"][(("endpoint", "/tts"), ("le", "0.25"))] == 1
    assert s["tts_ops_request_latency_seconds_bucket"][(("endpoint", "/tts"), ("le", "120.0"))] == 4


def test_synthesis_metrics_skip_cache_hits():
    m = Metrics()
    m.observe_synthesis(0.5, 2.0, "miss")
    m.observe_synthesis(1.0, 4.0, "MISS")
    m.observe_synthesis(0.0, 3.0, "hit")
    m.observe_synthesis(0.2, 0.0, "miss")  # empty audio: synthesis timed, no RTF (would be infinite)
    s = scrape(m)
    assert s["tts_ops_synthesis_seconds_count"][()] == 3
    assert s["tts_ops_audio_seconds_total"][()] == 6.0
    assert s["tts_ops_real_time_factor_count"][()] == 2
    assert s["tts_ops_real_time_factor_sum"][()] == 0.5
    assert s["tts_ops_real_time_factor_bucket"][(("le", "0.2"),)] == 0
    assert s["tts_ops_real_time_factor_bucket"][(("le", "0.3"),)] == 2


def test_collector_reads_sources_at_scrape_time():
    m = full_metrics()
    s = scrape(m)
    assert s["tts_ops_queue_depth"][()] == 5
    assert s["tts_ops_in_flight"][()] == 2
    assert s["tts_ops_queue_limit"][()] == 8

    workers = s["tts_ops_workers"]
    assert {dict(k)["state"] for k in workers} == {st.value for st in WorkerState}
    assert sum(workers.values()) == 4
    assert workers[(("state", "ready"),)] == 2
    assert workers[(("state", "failed"),)] == 0
    assert s["tts_ops_worker_rss_bytes"] == {(("worker", "w1"),): 100 * 2**20, (("worker", "w2"),): 200 * 2**20}
    assert s["tts_ops_worker_served_total"][(("worker", "w1"),)] == 7
    assert s["tts_ops_worker_restarts_total"] == {(("reason", "crash"),): 2, (("reason", "recycle"),): 1}

    assert s["tts_ops_cache_hits_total"][()] == 10
    assert s["tts_ops_cache_misses_total"][()] == 4
    assert s["tts_ops_cache_errors_total"][()] == 1
    assert s["tts_ops_redis_up"][()] == 1

    assert s["tts_ops_log_rotations_total"][()] == 2
    assert s["tts_ops_cleanup_runs_total"][()] == 3
    assert s["tts_ops_files_deleted_total"][()] == 12 + 3  # cleanup/guard + keep-N pruning
    assert s["tts_ops_bytes_freed_total"][()] == 4096 + 1000
    assert s["tts_ops_maintenance_failures_total"] == {(("task", "cleanup"),): 1}

    # Values follow the live objects, not a snapshot taken at construction.
    sup = m.supervisor
    assert isinstance(sup, FakeSupervisor)
    sup.workers["w3"].state = WorkerState.FAILED
    sup.restarts_by_reason["crash"] += 1
    m.balancer = type("B", (), {"queue_depth": 0, "in_flight": 0, "queue_limit": 8})()
    s = scrape(m)
    assert s["tts_ops_workers"][(("state", "failed"),)] == 1
    assert s["tts_ops_workers"][(("state", "starting"),)] == 0
    assert s["tts_ops_worker_restarts_total"][(("reason", "crash"),)] == 3
    assert s["tts_ops_queue_depth"][()] == 0


def test_redis_up_zero_when_down_and_absent_for_memory_backend():
    assert scrape(full_metrics(backend="redis", up=False))["tts_ops_redis_up"][()] == 0
    s = scrape(full_metrics(backend="memory", hits=3))
    assert "tts_ops_redis_up" not in s
    assert s["tts_ops_cache_hits_total"][()] == 3
    assert s["tts_ops_cache_misses_total"][()] == 0  # missing keys count as 0


def test_missing_sources_export_nothing():
    s = scrape(Metrics())
    assert "tts_ops_workers" not in s and "tts_ops_queue_depth" not in s
    s = scrape(Metrics(supervisor=FakeSupervisor(), cache=FakeCache({})))
    assert sum(s["tts_ops_workers"].values()) == 4
    assert s["tts_ops_cache_hits_total"][()] == 0
    assert "tts_ops_redis_up" not in s and "tts_ops_queue_depth" not in s and "tts_ops_cleanup_runs_total" not in s
    # Maintenance without a log manager (stderr-only logging): its counters, rotations and pruning as 0.
    s = scrape(Metrics(maintenance=FakeMaintenance()))
    assert s["tts_ops_log_rotations_total"][()] == 0
    assert s["tts_ops_files_deleted_total"][()] == 12 and s["tts_ops_bytes_freed_total"][()] == 4096


def test_broken_source_does_not_break_scrape():
    class BrokenCache:
        def stats(self):
            raise ConnectionError("redis went away")

    maintenance = type("M", (), {"counters": {"runs": None}, "output_store": FakeStore()})()  # partially initialised
    m = Metrics(supervisor=FakeSupervisor(), cache=BrokenCache(), maintenance=maintenance)
    s = scrape(m)
    assert "tts_ops_cache_hits_total" not in s
    assert sum(s["tts_ops_workers"].values()) == 4
    assert s["tts_ops_log_rotations_total"][()] == 0


def test_process_metrics_and_content_type():
    m = Metrics()
    body, content_type = m.render()
    assert content_type == CONTENT_TYPE_LATEST
    assert "process_resident_memory_bytes" in scrape(m)


def test_endpoint_label_cardinality_is_capped():
    m = Metrics()
    for i in range(MAX_ENDPOINTS + 10):
        m.observe_request(f"/scan/{i}", 404, 0.001)
    s = scrape(m)["tts_ops_requests_total"]
    assert len(s) == MAX_ENDPOINTS + 1
    assert s[(("endpoint", "other"), ("status", "404"))] == 10


def test_instances_use_separate_registries():
    a, b = full_metrics(), Metrics()
    a.observe_request("/tts", 200, 0.1)
    assert a.registry is not b.registry
    assert "tts_ops_requests_total" not in scrape(b)
    assert "tts_ops_workers" not in scrape(b)
    assert scrape(a)["tts_ops_requests_total"][(("endpoint", "/tts"), ("status", "200"))] == 1


async def test_handle_serves_metrics():
    m = full_metrics()
    m.observe_request("/tts", 200, 0.1)
    app = web.Application()
    app.router.add_get("/metrics", m.handle)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/metrics")
        assert resp.status == 200
        assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
        text = await resp.text()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"tts_ops_requests", "tts_ops_workers", "tts_ops_redis_up", "process_cpu_seconds"} <= names


def test_build_info_follows_ready_workers_and_keeps_the_last_known():
    m = full_metrics()
    version, python = importlib.metadata.version("tts-ops"), platform.python_version()
    assert scrape(m)["tts_ops_build_info"] == {
        (("engine", "fastspeech2-baker"), ("model_version", "baker-1"), ("python", python), ("version", version)): 1}
    sup = m.supervisor
    assert isinstance(sup, FakeSupervisor)
    for w in sup.workers.values():
        w.state = WorkerState.BACKOFF  # none ready: the last pair known stays
    assert len(scrape(m)["tts_ops_build_info"]) == 1
    sup.workers["w1"].state = WorkerState.READY
    sup.workers["w1"].health = {"engine": "fastspeech2-baker", "model_version": "baker-2"}
    assert [dict(k)["model_version"] for k in scrape(m)["tts_ops_build_info"]] == ["baker-2"]
    # Before any worker reported: one series, engine and model unknown.
    assert {dict(k)["engine"] for k in scrape(Metrics())["tts_ops_build_info"]} == {"unknown"}


def test_no_created_series():
    m = full_metrics()
    m.observe_request("/tts", 200, 0.1)
    m.observe_synthesis(0.5, 2.0, "miss")
    body = m.render()[0].decode()
    assert "tts_ops_requests_total" in body and "tts_ops_synthesis_seconds_count" in body  # positive control
    assert "_created" not in body


def test_disk_guard_active_follows_the_paused_store():
    m = full_metrics()
    assert scrape(m)["tts_ops_disk_guard_active"][()] == 0
    paused = type("S", (), {"paused": True})()
    m.maintenance = type("M", (), {"counters": FakeMaintenance.counters, "output_store": paused})()
    assert scrape(m)["tts_ops_disk_guard_active"][()] == 1


async def test_public_app_serves_only_metrics():
    m = full_metrics()
    async with TestClient(TestServer(m.build_app())) as client:
        resp = await client.get("/metrics")
        assert resp.status == 200 and "tts_ops_build_info" in await resp.text()
        assert (await client.get("/admin/status")).status == 404


def test_a_slot_being_replaced_exports_one_series_per_label(tmp_path):
    """Replace-first puts a predecessor and its successor in one slot: the per-worker series show the slot's
    current handle (the serving predecessor, then the promoted successor), never a duplicate label."""
    sup = Supervisor(WorkerSpec(engine="stand-in", runtime_dir=tmp_path), 2)  # never started: handles set by hand
    handles = [WorkerHandle("w1", sup.spec, sup._on_change, serial=1),
               WorkerHandle("w2", sup.spec, sup._on_change, serial=2),
               WorkerHandle("w1", sup.spec, sup._on_change, serial=3, replaces="w1#1", replacing=True)]
    old, other, new = handles
    for worker, rss, served in ((old, 100, 7), (other, 200, 3), (new, 300, 0)):
        worker.state, worker.rss_bytes, worker.served = WorkerState.READY, rss * 2**20, served
        sup.workers[worker.key] = worker
    m = Metrics(supervisor=sup)
    s = scrape(m)  # exporting both handles would put two samples on {worker="w1"}; scrape keeps the last
    assert s["tts_ops_worker_rss_bytes"] == {(("worker", "w1"),): 100 * 2**20, (("worker", "w2"),): 200 * 2**20}
    assert s["tts_ops_worker_served_total"] == {(("worker", "w1"),): 7, (("worker", "w2"),): 3}
    assert s["tts_ops_workers"][(("state", "ready"),)] == 3  # every handle is counted by state
    new.replacing = False  # handed over: the predecessor drains
    s = scrape(m)
    assert s["tts_ops_worker_rss_bytes"][(("worker", "w1"),)] == 300 * 2**20
    assert s["tts_ops_worker_served_total"] == {(("worker", "w1"),): 0, (("worker", "w2"),): 3}


def test_queued_requests_are_counted_before_any_read_and_never_pile_up():
    m = Metrics()
    m.observe_request("/health", 200, 0.001)
    assert m.registry.get_sample_value("tts_ops_requests_total", {"endpoint": "/health", "status": "200"}) == 1
    for _ in range(PENDING_REQUESTS_MAX):
        m.observe_request("/health", 200, 0.001)
    assert m.pending_requests < PENDING_REQUESTS_MAX  # applied without a scrape once the bound is reached
    count = m.registry.get_sample_value("tts_ops_request_latency_seconds_count", {"endpoint": "/health"})
    assert count == PENDING_REQUESTS_MAX + 1
