"""The published OpenAPI document against the live daemon: schemathesis (property-based, every check) finds no
5xx and no response that contradicts ``/openapi.json``, on the public listener and on the admin listener."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import http
from tts_ops.server.openapi import build_document

pytestmark = pytest.mark.slow

# Content-level rejections JSON Schema cannot express: text that is schema-valid but has nothing speakable (only
# emoji, control characters...) is answered 400 "nothing speakable", on both synthesis endpoints. And /tts answers
# text over max_text_chars with 413 (the reference API's status, documented), which schemathesis does not expect
# for invalid data by default.
SCHEMATHESIS_CONFIG = """
[[operations]]
include-path = "/tts"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]
checks.negative_data_rejection.expected-statuses = ["400", "401", "413", "415"]

[[operations]]
include-path = "/v1/audio/speech"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]
"""
ADMIN_PATHS = r"^/(admin|metrics)"


def schemathesis(url: str, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    config = workdir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", url, "--checks", "all",
               "--max-examples", "25", "--seed", "20261123", "--request-timeout", "60", "--workers", "1",
               "--no-color", *args]
    if shutil.which("schemathesis"):
        command[:3] = [shutil.which("schemathesis")]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=workdir)


@pytest.fixture(scope="module")
def small_daemon(module_daemon):
    # Small limits keep the boundary cases (longest allowed text) quick to synthesize.
    return module_daemon({"server": {"max_text_chars": 40, "max_input_chars": 60, "max_body_bytes": 4096}},
                         workers=2)


def test_document_is_valid_openapi_and_reflects_the_config(small_daemon):
    code, headers, body = http("GET", small_daemon.base_url + "/openapi.json")
    assert code == 200 and headers["Content-Type"].startswith("application/json")
    document = json.loads(body)
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    assert schemas["TtsRequest"]["properties"]["text"]["maxLength"] == 40
    assert schemas["SpeechRequest"]["properties"]["input"]["maxLength"] == 60
    for path in ("/tts", "/health", "/ready", "/v1/audio/speech", "/v1/models", "/openapi.json", "/output/{name}",
                 "/admin/status", "/admin/workers/{worker_id}/restart", "/admin/restart", "/admin/scale",
                 "/admin/cache", "/admin/cache/purge", "/admin/maintenance/{job}", "/metrics"):
        assert path in document["paths"], path
    admin_server = document["paths"]["/admin/status"]["get"]["servers"][0]["url"]
    assert admin_server == small_daemon.admin_url
    speech = document["paths"]["/v1/audio/speech"]["post"]
    assert set(speech["responses"]) >= {"200", "400", "401", "413", "415", "502", "503", "504"}
    assert "X-Speed-Applied" in speech["responses"]["200"]["headers"]
    assert "clamped" in schemas["SpeechRequest"]["properties"]["speed"]["description"]


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
                          # Scaling and restarting are real: keep them from churning workers mid-run.
                          "--exclude-path-regex", r"^/admin/(restart|scale|workers/)")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
