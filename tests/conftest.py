"""Shared fixtures: the real bundled model (pulled once per machine into the model store) and real
``tts-ops serve`` daemons started as subprocesses on free loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model_store_dir() -> Path:
    """The machine's model store with fastspeech2-baker pulled (downloaded once, reused across runs)."""
    from inference.models.store import ModelStore, default_store_dir

    store = ModelStore(default_store_dir())
    store.ensure("fastspeech2-baker")
    return store.root


@pytest.fixture(scope="session")
def baker_mapper(model_store_dir: Path) -> dict:
    from inference.models.store import ModelStore

    return json.loads((ModelStore(model_store_dir).model_dir("fastspeech2-baker") / "baker_mapper.json").read_text())


@pytest.fixture(scope="session")
def engine(model_store_dir: Path):
    """One loaded and warmed bundled engine shared by the engine tests (loading takes ~1 s)."""
    from inference.engines import create_engine

    eng = create_engine("fastspeech2-baker", store_dir=model_store_dir)
    eng.load()
    eng.warm_up()
    return eng


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def short_tmpdir(prefix: str) -> Path:
    # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def http(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 60,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    hdrs.update(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@dataclass
class DaemonProcess:
    """A running ``tts-ops serve`` with its URLs, token and captured log."""

    proc: subprocess.Popen
    base_url: str
    admin_url: str
    workdir: Path
    config_path: Path
    log_path: Path
    env: dict[str, str]
    token: str = ""
    extra: dict = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict:
        code, _, body = http("GET", self.admin_url + "/admin/status", token=self.token)
        assert code == 200, body
        return json.loads(body)

    def wait_until(self, predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode} while waiting for {what}\n"
                                     + self.log()[-4000:])
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n" + self.log()[-4000:])

    def ready_count(self) -> int:
        try:
            code, _, body = http("GET", self.base_url + "/ready", timeout=5)
            return json.loads(body)["workers"]["ready"]
        except (OSError, ValueError, KeyError):
            return 0

    def wait_ready(self, workers: int = 1, timeout: float = 120) -> None:
        self.wait_until(lambda: self.ready_count() >= workers, timeout, what=f"{workers} ready workers")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def launch_daemon(model_store_dir: Path, config: dict | None = None, *, workers: int = 1, wait: bool = True,
                  env: dict | None = None, store_dir: Path | None = None, cache: bool = False,
                  prefix: str = "ttsops-") -> DaemonProcess:
    """Start ``tts-ops serve`` on free loopback ports with its own temporary directories and fast probing.
    The result cache is off unless ``cache`` or the config turns it on: supervision tests must reach the workers."""
    workdir = short_tmpdir(prefix)
    port, admin_port = free_port(), free_port()
    # No drain delay: nothing health-checks these daemons, and every stop would wait it out.
    cfg: dict = {"server": {"host": "127.0.0.1", "port": port, "drain_delay_s": 0},
                 "admin": {"port": admin_port},
                 "workers": {"count": workers, "probe_interval_s": 0.5, "probe_timeout_s": 0.4,
                             "failure_threshold": 3, "kill_grace_s": 2, "backoff_initial_s": 0.2},
                 "cache": {"enabled": cache},
                 "logging": {"dir": str(workdir / "logs")}, "output": {"dir": str(workdir / "output")},
                 "paths": {"state_dir": str(workdir / "state"), "runtime_dir": str(workdir / "run")}}
    for section, values in (config or {}).items():
        cfg.setdefault(section, {}).update(values)
    port, admin_port = cfg["server"]["port"], cfg["admin"]["port"]  # the caller may have fixed them
    config_path = workdir / "tts-ops.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    log_path = workdir / "daemon.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TTS_OPS_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    full_env["TTS_OPS_MODEL_DIR"] = str(store_dir or model_store_dir)
    full_env.update(env or {})
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "tts_ops.cli", "serve", "--config", str(config_path)],
                                stdout=log_file, stderr=subprocess.STDOUT, env=full_env, cwd=workdir)
    daemon = DaemonProcess(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", workdir,
                           config_path, log_path, full_env)
    token_file = workdir / "state" / "admin.token"
    try:
        daemon.wait_until(lambda: token_file.is_file() and token_file.read_text().strip(), 30, what="admin token")
        daemon.token = token_file.read_text().strip()
        if wait:
            daemon.wait_ready(workers)
    except BaseException:
        dispose(daemon)
        raise
    return daemon


def dispose(daemon: DaemonProcess) -> None:
    if daemon.proc.poll() is None:
        daemon.stop(signal.SIGTERM, timeout=30)
    shutil.rmtree(daemon.workdir, ignore_errors=True)


@pytest.fixture
def start_daemon(model_store_dir: Path):
    """Factory: ``start_daemon(config_dict, workers=1, wait=True, env=..., store_dir=...)`` -> DaemonProcess."""
    started: list[DaemonProcess] = []

    def start(config: dict | None = None, **options) -> DaemonProcess:
        daemon = launch_daemon(model_store_dir, config, **options)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        dispose(daemon)


@pytest.fixture
def daemon(start_daemon) -> DaemonProcess:
    """A running daemon with one ready worker."""
    return start_daemon(workers=1)


@pytest.fixture
def notify_listener():
    """A bound AF_UNIX datagram socket standing in for systemd's notify socket; yields (socket, path). The path
    is in a short directory under /tmp because sun_path holds only 108 bytes."""
    directory = tempfile.mkdtemp(prefix="ttsnfy-", dir="/tmp")
    path = os.path.join(directory, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


def drain_datagrams(sock: socket.socket) -> list[bytes]:
    """Every datagram already queued on a non-blocking ``sock``, without waiting."""
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out
