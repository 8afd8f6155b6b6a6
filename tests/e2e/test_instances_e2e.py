"""Two instances of one user on one host with the default directories (issue 12): each has its own runtime
directory (sockets, lock), token file and instance record, so stopping one leaves the other serving and
administrable (found by --instance, --port or its config), and a second daemon for the same instance (same
instance name) refuses to start instead of taking over its sockets."""

from __future__ import annotations

import json
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

    def launch(port: int, admin_port: int) -> DaemonProcess:
        workdir = short_tmpdir("ttsinst-d-")
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


def token_of(root: Path, daemon: DaemonProcess, port: int) -> str:
    token_file = root / "state" / "tts-ops" / f"tts-ops-{port}.token"
    daemon.wait_until(lambda: token_file.is_file() and token_file.read_text().strip(), 30, what="token file")
    return token_file.read_text().strip()


def cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_ops.cli", *args], env=daemon.env, capture_output=True,
                          text=True, timeout=60, cwd=daemon.workdir)


def synthesize(daemon: DaemonProcess) -> None:
    code, headers, audio = http("POST", daemon.base_url + "/tts", {"text": "两个实例互不干扰。"})
    assert code == 200 and audio.startswith(b"RIFF"), (code, audio[:200])


def test_two_default_instances_run_side_by_side_and_a_duplicate_is_refused(host):
    root, launch = host
    ports, admin_ports = (free_port(), free_port()), (free_port(), free_port())
    a, b = (launch(port, admin) for port, admin in zip(ports, admin_ports, strict=True))
    a.token, b.token = (token_of(root, d, p) for d, p in zip((a, b), ports, strict=True))
    assert a.token != b.token
    for daemon in (a, b):
        daemon.wait_ready(1)
        synthesize(daemon)
    run_a, run_b = (root / "run" / "tts-ops" / f"tts-ops-{port}" for port in ports)
    assert any(run_a.glob("w1-*.sock")) and any(run_b.glob("w1-*.sock"))
    assert a.status()["pid"] == a.proc.pid and b.status()["pid"] == b.proc.pid  # each admin API is its own

    # The CLI finds each instance by name, by public port and by config, with no admin port given.
    listed = cli(a, "instances", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert {rows[f"tts-ops-{p}"]["pid"] for p in ports} == {a.proc.pid, b.proc.pid}
    assert all(rows[f"tts-ops-{p}"]["state"] == "running" for p in ports)
    for args in (("--instance", f"tts-ops-{ports[0]}"), ("--port", str(ports[0])), ("--config", str(a.config_path))):
        done = cli(a, "status", "--json", *args)
        assert done.returncode == 0 and json.loads(done.stdout)["pid"] == a.proc.pid, (args, done.stderr)

    assert a.stop() == 0
    assert not any(run_a.glob("w1-*.sock"))  # A cleaned up its own socket, record and token file...
    state = root / "state" / "tts-ops"
    assert not (state / f"tts-ops-{ports[0]}.json").exists() and not (state / f"tts-ops-{ports[0]}.token").exists()
    assert any(run_b.glob("w1-*.sock"))      # ...and nothing of B's
    assert (state / f"tts-ops-{ports[1]}.token").read_text().strip() == b.token
    synthesize(b)
    done = cli(b, "status", "--config", str(b.config_path))
    assert done.returncode == 0 and "w1" in done.stdout, done.stderr
    gone = cli(b, "status", "--instance", f"tts-ops-{ports[0]}")
    assert gone.returncode == 1 and "no running instance named" in gone.stderr and "Traceback" not in gone.stderr

    # Same instance (B's public port, so B's name) with another admin port: refused at the lock, B untouched.
    dup = launch(ports[1], free_port())
    assert dup.proc.wait(120) == EXIT_USAGE
    log = dup.log()
    assert str(run_b) in log and f"tts-ops-{ports[1]}" in log and f"pid {b.proc.pid}" in log, log[-2000:]
    assert (state / f"tts-ops-{ports[1]}.token").read_text().strip() == b.token
    assert json.loads((state / f"tts-ops-{ports[1]}.json").read_text())["pid"] == b.proc.pid
    assert any(run_b.glob("w1-*.sock"))
    synthesize(b)
    assert cli(b, "status", "--port", str(ports[1])).returncode == 0


def test_a_killed_instance_leaves_a_stale_record_the_cli_names(host):
    root, launch = host
    port = free_port()
    daemon = launch(port, free_port())
    token_of(root, daemon, port)
    daemon.proc.kill()
    daemon.proc.wait(30)
    listed = cli(daemon, "instances")
    assert listed.returncode == 0 and f"tts-ops-{port}" in listed.stdout and "stale" in listed.stdout, listed
    done = cli(daemon, "status", "--instance", f"tts-ops-{port}")
    assert done.returncode == 1 and "is not running" in done.stderr and "stale record" in done.stderr, done.stderr
    # Started again in place: the new daemon takes over the name (the lock died with the old one).
    again = launch(port, free_port())
    token_of(root, again, port)
    again.wait_ready(1)
    done = cli(again, "status", "--json", "--instance", f"tts-ops-{port}")
    assert done.returncode == 0 and json.loads(done.stdout)["pid"] == again.proc.pid, done.stderr
