"""The /v1 routes, API keys and OpenAI-shaped errors on the real public app (``FrontEnd.build_app``), over aiohttp's
test client with a stand-in supervisor that has no worker: everything that is decided before synthesis."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tts_ops.config import load_config
from tts_ops.http.docs import ASSETS
from tts_ops.http.errors import RequestError
from tts_ops.http.openai.routes import service_error
from tts_ops.http.public import FrontEnd
from tts_ops.upstream.balancer import Balancer

SPEECH = {"model": "tts-1", "voice": "alloy", "input": "你好。"}


class NoWorkers:
    workers: dict = {}
    target = 0

    def ready_workers(self):
        return []

    def active_workers(self):
        return []

    def can_become_ready(self):
        return False

    def add_listener(self, listener):
        pass

    def snapshot(self):
        return []


def make_client(tmp_path, **server) -> TestClient:
    config = load_config(overrides={
        "server": {"max_body_bytes": 4096, "max_text_chars": 50, "max_input_chars": 60, **server},
        "cache": {"enabled": False},
        "paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
        "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")}}, env={})
    supervisor = NoWorkers()
    frontend = FrontEnd(config, supervisor, Balancer(supervisor, config.server.queue_limit))
    return TestClient(TestServer(frontend.build_app()))


def openai_error(body: bytes) -> dict:
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.fixture
async def client(tmp_path):
    client = make_client(tmp_path)
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
async def keyed(tmp_path):
    client = make_client(tmp_path, api_keys=["sk-a", "sk-b"])
    await client.start_server()
    yield client
    await client.close()


async def test_no_worker_is_503_in_openai_shape_with_retry_after(client):
    resp = await client.post("/v1/audio/speech", json=SPEECH)
    assert resp.status == 503 and resp.headers["Retry-After"]
    error = openai_error(await resp.read())
    assert error["type"] == "server_error" and resp.headers["X-Request-ID"]


async def test_validation_errors_before_any_worker(client):
    resp = await client.post("/v1/audio/speech", json={**SPEECH, "response_format": "aac"})
    assert resp.status == 400
    error = openai_error(await resp.read())
    assert error["param"] == "response_format" and error["type"] == "invalid_request_error"
    resp = await client.post("/v1/audio/speech", json={**SPEECH, "input": "好" * 61})
    assert resp.status == 400 and openai_error(await resp.read())["code"] == "string_above_max_length"
    resp = await client.post("/v1/audio/speech", data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and "JSON" in openai_error(await resp.read())["message"]
    resp = await client.post("/v1/audio/speech", data=b"input=x",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415 and openai_error(await resp.read())


def test_service_errors_name_openais_fields():
    # The service names its job's field ("text", e.g. for "nothing speakable"); /v1 answers in OpenAI's names.
    # (The live answer is checked in tests/e2e/test_openapi.py: it needs a worker to find nothing speakable.)
    response = service_error(RequestError(400, "text contains nothing speakable", param="text"))
    assert response.status == 400 and json.loads(response.body)["error"]["param"] == "input"
    for param in ("voice", None):  # names OpenAI shares, and no name at all, pass through
        response = service_error(RequestError(400, "bad", param=param, code="invalid_value"))
        assert json.loads(response.body)["error"] == {"message": "bad", "type": "invalid_request_error",
                                                     "param": param, "code": "invalid_value"}


@pytest.mark.parametrize("raw", [b"[" * 4000, b'{"":[' * 800, b'{"input": ' + b"[" * 3000],
                         ids=["arrays", "objects", "in-a-field"])
async def test_deeply_nested_json_is_a_400_not_a_500(client, caplog, raw):
    # Under max_body_bytes, so it is parsed: json.loads raises RecursionError (not a ValueError) for it.
    resp = await client.post("/v1/audio/speech", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    error = openai_error(await resp.read())
    assert "nested too deeply" in error["message"] and error["type"] == "invalid_request_error"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize("model", ["gpt-4o-mini-tts-2025-03-20", "tts-1-1106", "tts-1-hd-1106",
                                   "gpt-4o-mini-tts-2027-01-01"])
async def test_dated_snapshots_are_accepted_and_retrievable(client, model):
    resp = await client.post("/v1/audio/speech", json={**SPEECH, "model": model})
    assert resp.status == 503  # past validation: this app has no worker
    resp = await client.get(f"/v1/models/{model}")
    assert resp.status == 200 and (await resp.json())["id"] == model
    resp = await client.post("/v1/audio/speech", json={**SPEECH, "model": model.upper()})
    assert resp.status == 400 and openai_error(await resp.read())["param"] == "model"


async def test_router_and_body_errors_have_openai_shape_on_v1(client):
    resp = await client.get("/v1/audio/voices")
    assert resp.status == 404 and "Invalid URL" in openai_error(await resp.read())["message"]
    resp = await client.get("/v1/audio/speech")
    assert resp.status == 405 and "POST" in resp.headers["Allow"] and openai_error(await resp.read())
    resp = await client.post("/v1/audio/speech", data=b"x" * 5000, headers={"Content-Type": "application/json"})
    assert resp.status == 413 and "4096" in openai_error(await resp.read())["message"]
    resp = await client.get("/nope")  # outside /v1 the reference shape stays
    assert resp.status == 404 and isinstance(json.loads(await resp.read())["error"], str)


async def test_models_and_openapi(client):
    resp = await client.get("/v1/models")
    body = await resp.json()
    assert body["object"] == "list" and body["data"][0]["id"] == "tts-1" and "alloy" in body["voices"]
    assert (await client.get("/v1/models/tts-1-hd")).status == 200
    resp = await client.get("/v1/models/dall-e-3")
    assert resp.status == 404 and openai_error(await resp.read())["code"] == "model_not_found"
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1") and "/v1/audio/speech" in doc["paths"]


async def test_any_key_or_none_without_configured_keys(client):
    assert (await client.get("/v1/models")).status == 200
    assert (await client.get("/v1/models", headers={"Authorization": "Bearer whatever"})).status == 200


@pytest.mark.parametrize("header", [None, "Bearer sk-c", "Bearer ", "Basic sk-a", "sk-a", "Bearer sk-a2"])
async def test_wrong_or_missing_key_is_401(keyed, header):
    headers = {"Authorization": header} if header is not None else {}
    resp = await keyed.get("/v1/models", headers=headers)
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert openai_error(await resp.read())["type"] == "invalid_request_error"
    resp = await keyed.post("/tts", json={"text": "你好"}, headers=headers)
    assert resp.status == 401 and isinstance((await resp.json())["error"], str)
    resp = await keyed.post("/v1/audio/speech", json=SPEECH, headers=headers)
    assert resp.status == 401


async def test_right_keys_pass_and_open_paths_stay_open(keyed):
    for key in ("sk-a", "sk-b"):
        resp = await keyed.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert resp.status == 200
        resp = await keyed.post("/tts", json={"text": "你好"}, headers={"Authorization": f"bearer {key}"})
        assert resp.status == 503  # past auth: no worker here
    for path in ("/health", "/ready", "/openapi.json", "/"):
        assert (await keyed.get(path)).status in (200, 503), path
    assert (await keyed.get("/static/nothing.js")).status == 404


async def test_docs_serve_swagger_ui_from_the_package_only(client):
    resp = await client.get("/docs")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert 'url: "openapi.json"' in page and "validatorUrl: null" in page
    assert "http:" not in page and "https:" not in page and "//" not in page.replace("<!DOCTYPE", "")
    linked = set(re.findall(r'(?:href|src)="docs/([^"]+)"', page))
    assert linked == set(ASSETS)
    for name, content_type in ASSETS.items():
        resp = await client.get(f"/docs/{name}")
        assert resp.status == 200 and resp.content_type == content_type, name
        assert len(await resp.read()) > 100, name
    bundle = await (await client.get("/docs/swagger-ui-bundle.js")).text()
    assert re.search(r'PACKAGE_VERSION:"5\.\d+\.\d+"', bundle)  # Swagger UI 5: the first to render OpenAPI 3.1
    # The distribution's own index.html and initializer (the petstore demo) are not served; neither is a traversal.
    for name in ("index.html", "swagger-initializer.js", "..%2Fswagger-ui.css", "%2E%2E%2F__init__.py"):
        resp = await client.get(f"/docs/{name}")
        assert resp.status == 404 and "error" in json.loads(await resp.read()), name


async def test_docs_with_a_trailing_slash_redirects_to_docs(client):
    resp = await client.get("/docs/", allow_redirects=False)
    assert resp.status == 308 and resp.headers["Location"] == "/docs"
