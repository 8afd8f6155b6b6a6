"""The load-balancer files in deploy/ are valid for the real programs (HAProxy, nginx); the HAProxy one is also the
one the fleet tests run (tests/e2e/test_fleet_e2e.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} not installed (scripts/test installs it as root)", pytrace=False)
    return path


def test_haproxy_config_is_valid():
    result = subprocess.run([require("haproxy"), "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_checks_ready_and_never_resends_a_sent_post():
    text = (DEPLOY / "haproxy.cfg").read_text()
    assert "http-check send meth GET uri /ready" in text and "http-check expect status 200" in text
    retry_on = [line.split()[1:] for line in text.splitlines() if line.strip().startswith("retry-on")]
    assert retry_on == [["conn-failure"]]
    assert "on-marked-down shutdown-sessions" not in text  # would cut a draining instance's in-flight requests


def test_nginx_example_is_valid():
    result = subprocess.run([require("nginx"), "-t", "-c", str(DEPLOY / "nginx.conf")], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
