"""The published OpenAPI document against the live daemon: schemathesis (property-based, every check) finds no
5xx and no response that contradicts ``/openapi.json``, on the public listener (``/docs`` included; without API keys,
and with ``server.api_keys`` set, where its ``ignored_auth`` check proves the documented 401s) and on the admin
listener (including restarts and scaling, on a one-worker daemon where every accepted scale is to 1 worker)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import http
from tts_ops.http.openapi import build_document

pytestmark = pytest.mark.slow

# Content-level rejections JSON Schema cannot express: text that is schema-valid but has nothing speakable (only
# emoji, control characters...) is answered 400 "nothing speakable", on both synthesis endpoints and /frontend. And
# /tts and /frontend answer text over max_text_chars with 413 (the reference API's status, documented), which
# schemathesis does not expect for invalid data by default.
SCHEMATHESIS_CONFIG = """
[[operations]]
include-path-regex = "^/(tts|frontend)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]
checks.negative_data_rejection.expected-statuses = ["400", "401", "413", "415"]

[[operations]]
include-path = "/v1/audio/speech"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]
"""
ADMIN_PATHS = r"^/(admin|metrics)"
CHURN_PATHS = r"^/admin/(restart|scale|workers/)"
API_KEY = "sk-schemathesis"
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
SMALL_LIMITS = {"max_text_chars": 40, "max_input_chars": 60, "max_body_bytes": 4096}


def schemathesis(url: str, workdir: Path, *args: str, hooks: Path | None = None) -> subprocess.CompletedProcess:
    config = workdir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", url, "--checks", "all",
               "--max-examples", "25", "--seed", "20261123", "--request-timeout", "60", "--workers", "1",
               "--no-color", *args]
    if shutil.which("schemathesis"):
        command[:3] = [shutil.which("schemathesis")]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(hooks)} if hooks else None
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=workdir, env=env)


@pytest.fixture(scope="module")
def small_daemon(module_daemon):
    # Small limits keep the boundary cases (longest allowed text) quick to synthesize.
    return module_daemon({"server": SMALL_LIMITS}, workers=2)


@pytest.fixture(scope="module")
def keyed_daemon(module_daemon):
    # One worker: the admin run restarts and scales it (to 1, see schemathesis_hooks.py) without churning many.
    return module_daemon({"server": {**SMALL_LIMITS, "api_keys": [API_KEY]}}, workers=1)


def test_document_is_valid_openapi_and_reflects_the_config(small_daemon):
    code, headers, body = http("GET", small_daemon.base_url + "/openapi.json")
    assert code == 200 and headers["Content-Type"].startswith("application/json")
    document = json.loads(body)
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    assert schemas["TtsRequest"]["properties"]["text"]["maxLength"] == 40
    assert schemas["SpeechRequest"]["properties"]["input"]["maxLength"] == 60
    for path in ("/tts", "/health", "/ready", "/v1/audio/speech", "/v1/models", "/openapi.json", "/output/{name}",
                 "/frontend", "/docs", "/docs/{asset}",
                 "/admin/status", "/admin/workers/{worker_id}/restart", "/admin/restart", "/admin/scale",
                 "/admin/cache", "/admin/cache/purge", "/admin/maintenance/{job}", "/metrics"):
        assert path in document["paths"], path
    admin_server = document["paths"]["/admin/status"]["get"]["servers"][0]["url"]
    assert admin_server == small_daemon.admin_url
    speech = document["paths"]["/v1/audio/speech"]["post"]
    assert set(speech["responses"]) >= {"200", "400", "401", "413", "415", "502", "503", "504"}
    assert "X-Speed-Applied" in speech["responses"]["200"]["headers"]
    assert "clamped" in schemas["SpeechRequest"]["properties"]["speed"]["description"]


def test_nothing_speakable_is_a_400_naming_each_apis_own_field(small_daemon):
    # Schema-valid text that the worker finds nothing speakable in: the documented 400 on both synthesis paths, with
    # OpenAI's field name (input) on /v1; a speakable text is the positive control.
    speech = {"model": "tts-1", "voice": "alloy", "input": "😀😀"}
    code, _, body = http("POST", small_daemon.base_url + "/v1/audio/speech", speech)
    error = json.loads(body)["error"]
    assert code == 400 and "nothing speakable" in error["message"] and error["param"] == "input", body
    code, _, body = http("POST", small_daemon.base_url + "/tts", {"text": "😀😀"})
    assert code == 400 and "nothing speakable" in json.loads(body)["error"], body
    code, _, _ = http("POST", small_daemon.base_url + "/v1/audio/speech", {**speech, "input": "你好。"})
    assert code == 200


def test_docs_page_and_its_assets_are_served(small_daemon):
    code, headers, body = http("GET", small_daemon.base_url + "/docs")
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:href|src)="(docs/[^"]+)"', body.decode())
    assert "docs/swagger-ui-bundle.js" in assets and "https:" not in body.decode()
    for asset in assets:
        code, _, _ = http("GET", f"{small_daemon.base_url}/{asset}")
        assert code == 200, asset


def test_openapi_spec_loads_in_schemathesis():
    import schemathesis as st

    from tts_ops.config import load_config

    config = load_config(overrides={"paths": {"state_dir": "/tmp/x", "runtime_dir": "/tmp/x"}}, env={})
    schema = st.openapi.from_dict(build_document(config))
    assert len(list(schema.get_all_operations())) >= 16


def test_schemathesis_public_listener(small_daemon, tmp_path):
    result = schemathesis(small_daemon.base_url + "/openapi.json", tmp_path, "--exclude-path-regex", ADMIN_PATHS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout


def test_schemathesis_admin_listener(small_daemon, tmp_path):
    result = schemathesis(small_daemon.base_url + "/openapi.json", tmp_path, "--include-path-regex", ADMIN_PATHS,
                          "--url", small_daemon.admin_url, "--header",
                          f"Authorization: Bearer {small_daemon.token}",
                          # Scaling, restarting and draining are real: they would churn workers or stop the daemon.
                          "--exclude-path-regex", r"^/admin/(restart|scale|workers/|drain)")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_document_requires_the_key_only_when_keys_are_configured(small_daemon, keyed_daemon):
    for daemon, security in ((small_daemon, [{"apiKey": []}, {}]), (keyed_daemon, [{"apiKey": []}])):
        document = json.loads(http("GET", daemon.base_url + "/openapi.json")[2])
        for path, method in (("/tts", "post"), ("/v1/audio/speech", "post"), ("/v1/models", "get")):
            operation = document["paths"][path][method]
            assert operation["security"] == security, path
            assert "401" in operation["responses"], path
        assert document["paths"]["/health"]["get"].get("security") is None
    for path in ("/tts", "/v1/audio/speech", "/admin/scale"):  # bodies that are not JSON, or nested too deeply
        description = document["paths"][path]["post"]["responses"]["400"]["description"]
        assert "not JSON" in description and "nested too deeply" in description, path
    assert API_KEY not in json.dumps(document)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": API_KEY}])
def test_keyed_daemon_answers_401_without_the_key(keyed_daemon, headers):
    speech = {"model": "tts-1", "voice": "alloy", "input": "你好。"}
    for method, path, body in (("POST", "/v1/audio/speech", speech), ("GET", "/v1/models", None),
                               ("POST", "/tts", {"text": "你好"})):
        code, response_headers, payload = http(method, keyed_daemon.base_url + path, body, headers=headers)
        assert code == 401 and response_headers["WWW-Authenticate"].startswith("Bearer"), path
        error = json.loads(payload)["error"]
        assert (error["type"] == "invalid_request_error") if path.startswith("/v1") else isinstance(error, str)
    code, _, _ = http("GET", keyed_daemon.base_url + "/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})
    assert code == 200


def operations_answering(report_dir: Path, status: int) -> set[str]:
    """Operations ("POST /tts") that answered ``status`` at least once in a schemathesis ndjson report."""
    labels = set()
    for report in report_dir.glob("ndjson-*"):
        for line in report.read_text().splitlines():
            recorder = json.loads(line).get("ScenarioFinished", {}).get("recorder", {})
            for interaction in recorder.get("interactions", {}).values():
                if (interaction.get("response") or {}).get("status_code") == status:
                    labels.add(recorder["label"])
    return labels


def test_schemathesis_public_listener_with_api_keys(keyed_daemon, tmp_path):
    # The key is sent with every request; schemathesis' ignored_auth check also sends each request without it and
    # with a wrong key, requires a 401 and checks it against the document like any other response.
    result = schemathesis(keyed_daemon.base_url + "/openapi.json", tmp_path, "--exclude-path-regex", ADMIN_PATHS,
                          "--header", f"Authorization: Bearer {API_KEY}", "--report", "ndjson", "--report-dir",
                          str(tmp_path / "report"))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert operations_answering(tmp_path / "report", 401) == {"POST /tts", "POST /frontend", "POST /v1/audio/speech",
                                                              "GET /v1/models", "GET /v1/models/{model}"}


def test_schemathesis_admin_restart_and_scale(keyed_daemon, tmp_path):
    result = schemathesis(keyed_daemon.base_url + "/openapi.json", tmp_path, "--include-path-regex", CHURN_PATHS,
                          "--url", keyed_daemon.admin_url, "--header", f"Authorization: Bearer {keyed_daemon.token}",
                          hooks=HOOKS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    log = keyed_daemon.log()
    scaled = re.findall(r"scaled to (\d+) workers", log)
    assert scaled and set(scaled) == {"1"}, scaled  # scale was exercised, and only ever to the one worker
    assert "rolling restart (admin)" in log
    keyed_daemon.wait_ready(1)
    assert keyed_daemon.status()["workers"]["target"] == 1
