"""The public front end over aiohttp's test client, with a stand-in supervisor that has no ready worker and none
that can become ready: every answer is JSON, /health matches the reference byte for byte, request ids are sane."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.fakes.pool import StandInSupervisor, StandInWorker
from tts_ops.config import load_config
from tts_ops.http.public import FrontEnd
from tts_ops.supervisor.states import WorkerState
from tts_ops.upstream.balancer import Balancer

S = WorkerState
UNHEALTHY = b'{"status":"unhealthy"}'
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def make_config(tmp_path: Path):
    return load_config(overrides={
        "server": {"retry_after_s": 7, "max_text_chars": 50, "max_body_bytes": 4096, "max_input_chars": 50},
        "paths": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")},
        "logging": {"dir": str(tmp_path / "logs")}, "output": {"dir": str(tmp_path / "out")},
    }, env={})


async def client_for(tmp_path: Path, supervisor: StandInSupervisor) -> tuple[TestClient, FrontEnd]:
    balancer = Balancer(supervisor, queue_limit=4)
    frontend = FrontEnd(make_config(tmp_path), supervisor, balancer)
    client = TestClient(TestServer(frontend.build_app()))
    await client.start_server()
    return client, frontend


@pytest.fixture
async def client(tmp_path):
    sup = StandInSupervisor([StandInWorker("w1", S.FAILED), StandInWorker("w2", S.FAILED)])
    client, _ = await client_for(tmp_path, sup)
    yield client
    await client.close()


async def read_json(resp) -> dict:
    assert resp.content_type == "application/json", (resp.status, await resp.text())
    return json.loads(await resp.read())


async def test_health_unhealthy_is_exact(client):
    resp = await client.get("/health")
    assert resp.status == 503
    assert await resp.read() == UNHEALTHY
    assert resp.content_type == "application/json"
    assert resp.headers["Cache-Control"] == "no-store"


async def test_tts_without_capacity_is_503_json_with_retry_after(client):
    resp = await client.post("/tts", json={"text": "你好，世界。"})
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "7"
    body = await read_json(resp)
    assert set(body) == {"error"} and "no worker" in body["error"]


async def test_ready_is_503_json_with_counts(client):
    resp = await client.get("/ready")
    assert resp.status == 503
    body = await read_json(resp)
    assert body["ready"] is False and body["accepting"] is True
    assert body["workers"]["ready"] == 0 and body["workers"]["total"] == 2 and body["workers"]["target"] == 2
    assert body["workers"]["by_state"]["failed"] == 2
    assert body["queue_depth"] == 0 and body["in_flight"] == 0


async def test_unknown_path_is_404_json(client):
    resp = await client.get("/nope")
    assert resp.status == 404
    assert "error" in await read_json(resp)


async def test_wrong_method_is_405_json_with_allow(client):
    resp = await client.get("/tts")
    assert resp.status == 405
    assert "error" in await read_json(resp)
    assert "POST" in resp.headers.get("Allow", "")
    resp = await client.post("/health")
    assert resp.status == 405 and "error" in await read_json(resp)


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 400, "valid JSON"),
    ({"emotion": "happy"}, 400, "'text' is required"),
    ({"text": "你好", "speed": 9}, 400, "between 0.5 and 2.0"),
    ({"text": "你好", "pitch": 1}, 400, "pitch"),
    ({"text": "好" * 51}, 413, "limit is 50"),
])
async def test_client_errors_are_json_even_without_capacity(client, body, status, fragment):
    if isinstance(body, bytes):
        resp = await client.post("/tts", data=body, headers={"Content-Type": "application/json"})
    else:
        resp = await client.post("/tts", json=body)
    assert resp.status == status
    assert fragment in (await read_json(resp))["error"]
    assert "Retry-After" not in resp.headers


async def test_wrong_content_type_is_415(client):
    resp = await client.post("/tts", data=b"text=hi", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415 and "application/json" in (await read_json(resp))["error"]


async def test_oversized_body_is_413_json(client):
    resp = await client.post("/tts", data=b'{"text": "' + b"a" * 5000 + b'"}',
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413 and "too large" in (await read_json(resp))["error"]


@pytest.mark.parametrize("incoming", ["abc-123", "req.42_X", "a" * 64, "0f" * 16])
async def test_sane_request_id_is_echoed(client, incoming):
    for method, path in (("GET", "/health"), ("POST", "/tts"), ("GET", "/nope")):
        resp = await client.request(method, path, json={"text": "你好"} if method == "POST" else None,
                                    headers={"X-Request-ID": incoming})
        assert resp.headers["X-Request-ID"] == incoming, (method, path)


@pytest.mark.parametrize("incoming", ["a" * 200, "a" * 65, "has spaces", "semi;colon", "slash/id", "", "ünï"])
async def test_insane_request_id_is_replaced(client, incoming):
    resp = await client.get("/health", headers={"X-Request-ID": incoming.encode("utf-8").decode("latin-1")})
    got = resp.headers["X-Request-ID"]
    assert got != incoming and HEX_ID.match(got), got


async def test_request_id_generated_when_absent_and_unique(client):
    ids = set()
    for _ in range(3):
        resp = await client.get("/ready")
        ids.add(resp.headers["X-Request-ID"])
    assert len(ids) == 3 and all(HEX_ID.match(i) for i in ids)


async def test_not_accepting_is_unhealthy_and_503(tmp_path):
    sup = StandInSupervisor([StandInWorker("w1", S.READY, pid=4242)], can_become_ready=True)
    client, frontend = await client_for(tmp_path, sup)
    try:
        resp = await client.get("/health")
        assert (resp.status, await resp.read()) == (200, b'{"status":"healthy"}')
        resp = await client.get("/ready")
        assert resp.status == 200 and (await read_json(resp))["workers"]["ready"] == 1
        frontend.set_accepting(False)  # draining for shutdown
        resp = await client.get("/health")
        assert (resp.status, await resp.read()) == (503, UNHEALTHY)
        resp = await client.post("/tts", json={"text": "你好"})
        assert resp.status == 503 and resp.headers["Retry-After"] == "7"
        assert "shutting down" in (await read_json(resp))["error"]
        resp = await client.get("/ready")
        body = await read_json(resp)
        assert resp.status == 503 and body["ready"] is False and body["accepting"] is False
    finally:
        await client.close()


async def test_apply_reaches_the_routes_and_the_service(tmp_path):
    sup = StandInSupervisor([StandInWorker("w1", S.FAILED)])
    client, frontend = await client_for(tmp_path, sup)
    try:
        text = {"text": "你" * 60}
        assert (await client.post("/tts", json=text)).status == 413  # positive control: the limit is 50
        assert (await read_json(await client.get("/ready")))["limits"]["max_text_chars"] == 50
        new = load_config(overrides={
            "server": {"retry_after_s": 3, "max_text_chars": 100},
            "paths": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")},
            "logging": {"dir": str(tmp_path / "logs")}, "output": {"dir": str(tmp_path / "out")}}, env={})
        frontend.apply(new)
        assert frontend.config is new and frontend.service.config is new
        assert (await read_json(await client.get("/ready")))["limits"]["max_text_chars"] == 100
        frontend.set_accepting(False)
        resp = await client.post("/tts", json=text)  # no longer too long: refused for the drain, new Retry-After
        assert resp.status == 503 and resp.headers["Retry-After"] == "3"
    finally:
        await client.close()


async def test_index_page_is_served(client):
    resp = await client.get("/")
    assert resp.status == 200 and b"<html" in (await resp.read()).lower()


async def test_chinese_in_an_error_is_readable_not_escaped(client):
    resp = await client.post("/tts", json={"text": "你好", "emotion": "无聊"})
    raw = await resp.read()
    assert resp.status == 400 and "unknown emotion '无聊'" in raw.decode("utf-8"), raw
    assert b"\\u" not in raw
    assert json.loads(raw)["error"].startswith("unknown emotion '无聊'")


@pytest.mark.parametrize("emotion", ["开心", "高兴", "快乐", "悲伤", "难过", "伤心", "生气", "愤怒", "害怕", "恐惧",
                                     "惊讶", "吃惊", "厌恶", "讨厌", "中性", "平静"])
async def test_chinese_emotion_names_are_accepted(client, emotion):
    # No worker can take the job (503), so getting past validation is what shows the name was accepted.
    resp = await client.post("/tts", json={"text": "你好", "emotion": emotion})
    assert resp.status == 503, await resp.text()
