"""The daemon's own lifecycle: its state machine, reloads that apply all or nothing, a second daemon on taken
ports that leaves the first untouched, and an admin API that answers 401 (not 500) to non-UTF-8 tokens.

Unit tests build a ``Daemon`` without running it (nothing is bound or spawned); the end-to-end ones start real
``tts-ops serve`` processes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import free_port, http
from tts_ops.config import Config, load_config, restart_only_changes
from tts_ops.daemon import Daemon, DaemonState
from tts_ops.supervisor.pool import ReplacementFailed
from tts_ops.supervisor.states import IllegalTransition

D = DaemonState


def make_config(tmp_path: Path, **sections) -> Config:
    base = {"paths": {"state_dir": tmp_path / "state", "runtime_dir": tmp_path / "run"},
            "output": {"dir": tmp_path / "output"}, "logging": {"dir": tmp_path / "logs"},
            "workers": {"count": 1}}
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return Config(**base)


# -- state machine ------------------------------------------------------------------------------------------------
def test_daemon_state_transitions_are_checked_and_logged(tmp_path, caplog):
    daemon = Daemon(make_config(tmp_path))
    caplog.set_level(logging.INFO, "tts_ops.daemon")
    assert daemon.state is D.STARTING and daemon.frontend.accepting
    for state in (D.RUNNING, D.RELOADING, D.RUNNING, D.RELOADING, D.DRAINING):
        daemon._transition(state)
        assert daemon.state is state
    # Draining: health checks fail at once, requests are still served until the listener closes (STOPPING).
    assert daemon.frontend.accepting and daemon.frontend.draining and not daemon.frontend.healthy
    with pytest.raises(IllegalTransition, match="daemon cannot go from draining to running"):
        daemon._transition(D.RUNNING)
    daemon._transition(D.STOPPING)
    assert not daemon.frontend.accepting  # new requests on open connections get 503 + Retry-After
    daemon._transition(D.STOPPED, "done")
    for state in D:
        with pytest.raises(IllegalTransition):
            daemon._transition(state)
    messages = [r.getMessage() for r in caplog.records]
    assert "daemon running -> reloading" in messages and "daemon stopping -> stopped: done" in messages
    assert daemon.status()["state"] == "stopped"


@pytest.mark.parametrize("current, new", [(D.STARTING, D.RELOADING), (D.RUNNING, D.STOPPED),
                                          (D.RUNNING, D.STARTING), (D.RELOADING, D.STOPPED)])
def test_forbidden_daemon_moves(tmp_path, current, new):
    daemon = Daemon(make_config(tmp_path))
    daemon.state = current
    with pytest.raises(IllegalTransition):
        daemon._transition(new)
    assert daemon.state is current


def test_constructing_the_daemon_writes_no_token(tmp_path):
    daemon = Daemon(make_config(tmp_path))
    assert daemon.token and not daemon.token_file.exists()


# -- admin token ----------------------------------------------------------------------------------------------------
def test_generated_token_is_written_for_the_cli(tmp_path):
    daemon = Daemon(make_config(tmp_path))
    daemon.publish_instance()
    assert daemon.token_file.read_text().strip() == daemon.token
    assert daemon.token_file.stat().st_mode & 0o777 == 0o600
    record = json.loads(daemon.instance_files.record_file.read_text())
    assert record["pid"] == os.getpid() and record["token_file"] == str(daemon.token_file)


def test_configured_token_is_not_copied_to_disk_and_a_token_file_there_is_left_alone(tmp_path, caplog):
    daemon = Daemon(make_config(tmp_path, admin={"token": "configured-secret-token"}))
    assert daemon.token == "configured-secret-token"
    daemon.publish_instance()
    assert not daemon.token_file.exists()
    assert json.loads(daemon.instance_files.record_file.read_text())["token_file"] is None
    # A file there was written by someone else (another instance, the operator): a daemon deletes only its own.
    daemon.token_file.write_text("another-instance-token\n")
    caplog.set_level(logging.INFO, "tts_ops.daemon")
    daemon.publish_instance()
    daemon.instance_files.withdraw()
    assert daemon.token_file.read_text() == "another-instance-token\n"
    assert not daemon.instance_files.record_file.exists()
    assert not any("configured-secret-token" in r.getMessage() for r in caplog.records)


async def test_cli_status_works_with_a_configured_token_and_no_token_file(tmp_path):
    token = "configured-secret-token"
    cfg = {"server": {"host": "127.0.0.1", "port": free_port()}, "admin": {"port": free_port()},
           "workers": {"count": 1}, "logging": {"dir": str(tmp_path / "logs")},
           "output": {"dir": str(tmp_path / "output")},
           "paths": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")}}
    config_path = tmp_path / "tts-ops.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    daemon = Daemon(load_config(config_path, env={"TTS_OPS_ADMIN_TOKEN": token}))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TTS_OPS_")}

    async def cli(env: dict) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tts_ops.cli", "status", "--json", "--config", str(config_path),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out, err = await proc.communicate()
        return proc.returncode, out.decode(), err.decode()

    try:
        # The listeners and the token step of run(), without spawning workers.
        await daemon.start_listeners()
        daemon.publish_instance()
        assert not daemon.token_file.exists()
        code, out, err = await cli({**base_env, "TTS_OPS_ADMIN_TOKEN": token})
        assert code == 0, err
        assert json.loads(out)["state"] == "starting"
        # Without the variable the CLI has no token; the instance record says it is configured: one line saying
        # so and what to do.
        code, out, err = await cli(base_env)
        assert code == 1 and "uses a configured admin token" in err and "TTS_OPS_ADMIN_TOKEN" in err, err
        assert "Traceback" not in err
    finally:
        for runner in daemon._runners:
            await runner.cleanup()


# -- reload: what needs a restart (the rules themselves: tests/tts_ops/config/test_reload.py) -----------------
def running_without_workers(old, new) -> Daemon:
    """A RUNNING Daemon whose reload reads ``new`` and whose rolling restart has no workers to roll."""
    daemon = Daemon(old, reload_config=lambda: new)
    daemon.state = D.RUNNING

    async def no_op_restart(reason, only=None):
        return []

    daemon.supervisor.rolling_restart = no_op_restart
    return daemon


async def test_reload_warns_once_per_section_needing_a_restart(tmp_path, caplog):
    old = make_config(tmp_path)
    new = make_config(tmp_path, server={"port": 5999}, cache={"ttl_s": 5}, admin={"token": "s3cret-token-value"})
    daemon = running_without_workers(old, new)
    caplog.set_level(logging.WARNING, "tts_ops.daemon")
    await daemon.reload()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("needs a restart" in w for w in warnings)
    assert any("'server'" in w and "port" in w for w in warnings)
    assert not any("s3cret" in w for w in warnings)
    assert daemon.config.server.port == old.server.port and daemon.reloads == 1


async def test_graceful_timeout_change_needs_a_restart(tmp_path, caplog):
    # The public runner's shutdown_timeout is fixed when it is built: a reload must not pretend to change it.
    old = make_config(tmp_path)
    new = make_config(tmp_path, server={"graceful_timeout_s": 5, "queue_limit": 3})
    assert restart_only_changes(old, new) == {"server": ["graceful_timeout_s"]}
    daemon = running_without_workers(old, new)
    caplog.set_level(logging.WARNING, "tts_ops.daemon")
    await daemon.reload()
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "graceful_timeout_s changed in 'server': needs a restart" in warning
    assert daemon.reloads == 1 and daemon.balancer.queue_limit == 3
    # Status, the drain deadline and the supervisor's drain budget all keep the value the runner was built with.
    assert daemon.config.server.graceful_timeout_s == old.server.graceful_timeout_s
    assert daemon.supervisor.drain_timeout_s == old.server.graceful_timeout_s


# -- reload: all or nothing ---------------------------------------------------------------------------------------
async def test_reload_applies_only_after_the_workers_rolled(tmp_path):
    old = make_config(tmp_path, output={"cleanup_interval_s": 3600})
    new = make_config(tmp_path, output={"save": True, "retention_days": 2, "dir": tmp_path / "out2"},
                      workers={"max_rss_mb": 999}, server={"queue_limit": 5})
    daemon = Daemon(old, reload_config=lambda: new)
    daemon.state = D.RUNNING
    seen = {}

    async def rolling_restart(reason, only=None):
        # While the workers roll, everything else still runs on the old config.
        seen.update(engine_spec=daemon.supervisor.spec.options_json, save=daemon.output_store.enabled,
                    frontend=daemon.frontend.config)
        return []

    daemon.supervisor.rolling_restart = rolling_restart
    await daemon.reload()
    assert seen["save"] is False and seen["frontend"] is old
    assert daemon.state is D.RUNNING and daemon.reloads == 1 and daemon.last_reload["ok"]
    assert daemon.frontend.config is daemon.config and daemon.config.output.save
    assert daemon.output_store.enabled and daemon.output_store.directory == tmp_path / "out2"
    assert daemon.maintenance.output.retention_days == 2 and daemon.maintenance.output.dir == tmp_path / "out2"
    assert daemon.supervisor.max_rss_mb == 999 and daemon.balancer.queue_limit == 5


async def test_failed_reload_keeps_the_old_config_and_spec_everywhere(tmp_path, caplog):
    old = make_config(tmp_path)
    new = make_config(tmp_path, workers={"engine": "sambert-hifigan", "max_rss_mb": 999}, output={"save": True})
    daemon = Daemon(old, reload_config=lambda: new)
    daemon.state = D.RUNNING
    old_spec = daemon.supervisor.spec
    calls = []

    async def failing_restart(reason, only=None):
        calls.append((reason, daemon.supervisor.spec.engine))
        if reason == "reload":
            raise ReplacementFailed("successor of w1 did not become ready (boot failure (exit 3)); w1 keeps serving")
        return []

    daemon.supervisor.rolling_restart = failing_restart
    caplog.set_level(logging.ERROR, "tts_ops.daemon")
    await daemon.reload()
    assert calls == [("reload", "sambert-hifigan"), ("reload rollback", "fastspeech2-baker")]
    assert daemon.supervisor.spec is old_spec and daemon.supervisor.max_rss_mb == old.workers.max_rss_mb
    assert daemon.config is old and daemon.frontend.config is old
    assert not daemon.output_store.enabled and not daemon.maintenance.output.save
    assert daemon.state is D.RUNNING and daemon.reloads == 0 and daemon.last_reload["ok"] is False
    assert daemon.status()["engine"] == "fastspeech2-baker"
    assert any("reload failed, keeping the running config" in r.getMessage() for r in caplog.records)


async def test_reload_ignored_while_draining(tmp_path):
    daemon = Daemon(make_config(tmp_path), reload_config=lambda: pytest.fail("config must not be read"))
    daemon.state = D.DRAINING
    await daemon.reload()
    assert daemon.state is D.DRAINING


# -- end to end ---------------------------------------------------------------------------------------------------
def rewrite_config(daemon, **sections) -> None:
    cfg = yaml.safe_load(daemon.config_path.read_text())
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    daemon.config_path.write_text(yaml.safe_dump(cfg))


def model_ids(daemon) -> set[str]:
    code, _, body = http("GET", daemon.base_url + "/v1/models")
    assert code == 200, body
    return {entry["id"] for entry in json.loads(body)["data"]}


def run_cli(daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_ops.cli", *args, "--config", str(daemon.config_path)],
                          capture_output=True, text=True, timeout=120, env=daemon.env)


@pytest.mark.slow
def test_hup_with_an_engine_that_cannot_boot_keeps_everything_on_the_old_one(start_daemon):
    daemon = start_daemon(workers=1)
    [before] = daemon.status()["workers"]["items"]
    models = model_ids(daemon)
    assert "fastspeech2-baker" in models
    # sambert-hifigan's optional packages are not installed here: its workers exit 3 at boot.
    rewrite_config(daemon, workers={"engine": "sambert-hifigan"}, output={"save": True})
    daemon.proc.send_signal(signal.SIGHUP)
    status = daemon.wait_until(lambda: (lambda s: s["last_reload"] and s["state"] == "running" and s)(
        daemon.status()), 120, what="the reload to finish")
    assert status["last_reload"]["ok"] is False and status["reloads"] == 0
    assert status["engine"] == "fastspeech2-baker"
    assert [row["id"] for row in status["workers"]["items"]] == [before["id"]]
    assert model_ids(daemon) == models
    code, headers, _ = http("POST", daemon.base_url + "/tts", {"text": "旧的工作进程还在服务。"})
    assert code == 200 and headers["X-Worker"] == before["id"] and "X-Output-URL" not in headers
    assert "reload failed, keeping the running config" in daemon.log()
    # The old spec is back: a worker started now boots the old engine and becomes ready.
    result = run_cli(daemon, "restart", "--worker", before["id"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(row["state"] == "ready" for row in daemon.status()["workers"]["items"])


@pytest.mark.slow
def test_hup_turning_output_save_on_takes_effect(start_daemon):
    daemon = start_daemon(workers=1)
    code, headers, _ = http("POST", daemon.base_url + "/tts", {"text": "还没有保存。"})
    assert code == 200 and "X-Output-URL" not in headers
    rewrite_config(daemon, output={"save": True})
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_until(lambda: daemon.status()["reloads"] == 1 and daemon.status()["state"] == "running", 120,
                      what="the reload to be applied")
    code, headers, audio = http("POST", daemon.base_url + "/tts", {"text": "现在保存了。"})
    assert code == 200 and headers.get("X-Output-URL", "").startswith("/output/"), headers
    code, _, saved = http("GET", daemon.base_url + headers["X-Output-URL"])
    assert code == 200 and saved == audio


@pytest.mark.slow
def test_second_daemon_on_the_same_ports_leaves_the_first_untouched(start_daemon):
    first = start_daemon(workers=1)
    token_file = first.workdir / "state" / "admin.token"
    token, stat_before = token_file.read_text(), token_file.stat()
    pids = {row["pid"] for row in first.status()["workers"]["items"]}
    second = subprocess.run([sys.executable, "-m", "tts_ops.cli", "serve", "--config", str(first.config_path)],
                            capture_output=True, text=True, timeout=120, env=first.env, cwd=first.workdir)
    assert second.returncode != 0
    # Refused at the runtime-directory lock, taken before the ports (tts_ops.instance), naming the holder.
    assert f"in use by another tts-ops daemon (pid {first.proc.pid}" in second.stderr, second.stderr[-2000:]
    assert "spawned" not in second.stdout + second.stderr
    assert token_file.read_text() == token and token_file.stat().st_ino == stat_before.st_ino
    status = run_cli(first, "status")
    assert status.returncode == 0 and "1/1 workers ready" in status.stdout, status.stdout + status.stderr
    assert {row["pid"] for row in first.status()["workers"]["items"]} == pids
    assert http("POST", first.base_url + "/tts", {"text": "第一个守护进程还在。"})[0] == 200


@pytest.mark.slow
def test_admin_token_with_non_utf8_bytes_is_401(daemon):
    url = urlsplit(daemon.admin_url)
    conn = HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.putrequest("GET", "/admin/status")
        conn.putheader("Authorization", b"Bearer \xff\xfe")
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 401, body
    assert "token" in json.loads(body)["error"]
    assert daemon.status()["state"] == "running"
