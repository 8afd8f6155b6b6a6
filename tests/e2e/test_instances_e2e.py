"""Two instances of one user on one host with the default directories (issue 12): each has its own runtime
directory (sockets, lock) and token file, so stopping one leaves the other serving and administrable, and a
second daemon for the same instance (same admin port) refuses to start instead of taking over its sockets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import DaemonProcess, dispose, free_port, http, short_tmpdir
from tts_vocab.exit_codes import EXIT_USAGE


@pytest.fixture
def host(model_store_dir: Path):
    """A shared HOME/XDG tree standing in for one user's host, and a factory of daemons with no paths.* set."""
    root = short_tmpdir("ttsinst-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTS_OPS_", "NOTIFY_SOCKET"))}
    env.update(HOME=str(root / "home"), XDG_STATE_HOME=str(root / "state"), XDG_RUNTIME_DIR=str(root / "run"),
               TTS_OPS_MODEL_DIR=str(model_store_dir))
    started: list[DaemonProcess] = []

    def launch(admin_port: int) -> DaemonProcess:
        workdir = short_tmpdir("ttsinst-d-")
        port = free_port()
        cfg = {"server": {"host": "127.0.0.1", "port": port}, "admin": {"port": admin_port},
               "workers": {"count": 1, "probe_interval_s": 0.5, "probe_timeout_s": 0.4},
               "cache": {"enabled": False}, "logging": {"dir": str(workdir / "logs")},
               "output": {"dir": str(workdir / "output")}}
        config_path = workdir / "tts-ops.yaml"
        config_path.write_text(yaml.safe_dump(cfg))
        log_path = workdir / "daemon.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", "tts_ops.cli", "serve", "--config", str(config_path)],
                                    stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        daemon = DaemonProcess(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", workdir,
                               config_path, log_path, env)
        started.append(daemon)
        return daemon

    yield root, launch
    for daemon in started:
        dispose(daemon)
    shutil.rmtree(root, ignore_errors=True)


def token_of(root: Path, daemon: DaemonProcess, admin_port: int) -> str:
    token_file = root / "state" / "tts-ops" / f"admin-{admin_port}.token"
    daemon.wait_until(lambda: token_file.is_file() and token_file.read_text().strip(), 30, what="token file")
    return token_file.read_text().strip()


def cli_status(daemon: DaemonProcess) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_ops.cli", "status", "--config", str(daemon.config_path)],
                          env=daemon.env, capture_output=True, text=True, timeout=60)


def synthesize(daemon: DaemonProcess) -> None:
    code, headers, audio = http("POST", daemon.base_url + "/tts", {"text": "两个实例互不干扰。"})
    assert code == 200 and audio.startswith(b"RIFF"), (code, audio[:200])


def test_two_default_instances_run_side_by_side_and_a_duplicate_is_refused(host):
    root, launch = host
    ports = free_port(), free_port()
    a, b = (launch(port) for port in ports)
    a.token, b.token = (token_of(root, d, p) for d, p in zip((a, b), ports, strict=True))
    assert a.token != b.token
    for daemon in (a, b):
        daemon.wait_ready(1)
        synthesize(daemon)
    run_a, run_b = (root / "run" / "tts-ops" / f"admin-{port}" for port in ports)
    assert any(run_a.glob("w1-*.sock")) and any(run_b.glob("w1-*.sock"))
    assert a.status()["pid"] == a.proc.pid and b.status()["pid"] == b.proc.pid  # each admin API is its own

    assert a.stop() == 0
    assert not any(run_a.glob("w1-*.sock"))  # A cleaned up its own socket...
    assert any(run_b.glob("w1-*.sock"))      # ...and nothing of B's
    synthesize(b)
    done = cli_status(b)
    assert done.returncode == 0 and "w1" in done.stdout, done.stderr

    # Same instance key (B's admin port) on another public port: refused at the lock, B untouched.
    dup = launch(ports[1])
    assert dup.proc.wait(120) == EXIT_USAGE
    log = dup.log()
    assert str(run_b) in log and f"admin-{ports[1]}" in log and f"pid {b.proc.pid}" in log, log[-2000:]
    assert (root / "state" / "tts-ops" / f"admin-{ports[1]}.token").read_text().strip() == b.token
    assert any(run_b.glob("w1-*.sock"))
    synthesize(b)
    assert cli_status(b).returncode == 0
