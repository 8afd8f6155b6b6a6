"""End-to-end stable worker slots on a real ``tts-ops serve``: ids stay ``w1..wN`` through a HUP rolling restart,
an admin rolling restart and a CLI restart of one worker (metric labels too), and a SIGSTOPped worker is KILLed at
once, without the TERM grace, and replaced in its own slot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import http

pytestmark = pytest.mark.slow


def rows(daemon) -> list[dict]:
    return daemon.status()["workers"]["items"]


def slots(daemon) -> dict[str, dict]:
    """The one row per slot once no replacement is in progress (the test fails if one is)."""
    items = rows(daemon)
    by_id = {r["id"]: r for r in items}
    assert len(by_id) == len(items), items
    return by_id


def all_ready(daemon, ids: set[str]) -> bool:
    items = rows(daemon)
    return {r["id"] for r in items} == ids and len(items) == len(ids) and all(r["state"] == "ready" for r in items)


def run_cli(daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_ops.cli", *args, "--config", str(daemon.config_path)],
                          capture_output=True, text=True, timeout=120, env=daemon.env)


def worker_labels(daemon) -> set[str]:
    code, _, body = http("GET", daemon.admin_url + "/metrics", token=daemon.token)
    assert code == 200, body
    lines = [line for line in body.decode().splitlines() if line.startswith("tts_ops_worker_served_total{")]
    return {line.split('worker="', 1)[1].split('"', 1)[0] for line in lines}


def test_slots_survive_hup_admin_and_cli_restarts(start_daemon):
    daemon = start_daemon(workers=2)
    ids = {"w1", "w2"}
    first = slots(daemon)
    assert set(first) == ids and worker_labels(daemon) == ids
    sockets = {p.name for p in (daemon.workdir / "run").glob("*.sock")}
    # w<slot>-<daemon pid>-<serial>.sock: two instances sharing a runtime dir cannot collide.
    expected = {f"{r['key'].split('#')[0]}-{daemon.proc.pid}-{r['key'].split('#')[1]}.sock" for r in first.values()}
    assert sockets == expected, sockets

    reloads = daemon.status()["reloads"]
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_until(lambda: daemon.status()["reloads"] > reloads and all_ready(daemon, ids), 120,
                      what="the HUP rolling restart")
    after_hup = slots(daemon)
    assert all(after_hup[i]["key"] != first[i]["key"] and after_hup[i]["replaces"] == first[i]["key"] for i in ids)

    code, _, body = http("POST", daemon.admin_url + "/admin/restart", token=daemon.token, timeout=120)
    assert code == 200, body
    replaced = json.loads(body)["replaced"]
    assert [entry.split("->")[0] for entry in replaced] == [after_hup[i]["key"] for i in sorted(ids)], replaced
    assert all_ready(daemon, ids)

    # What issue 12 saw break: the id from before the rolling restarts still names a worker.
    before = slots(daemon)["w1"]
    result = run_cli(daemon, "restart", "--worker", "w1")
    assert result.returncode == 0 and "worker w1 replaced" in result.stdout, (result.stdout, result.stderr)
    daemon.wait_until(lambda: all_ready(daemon, ids), 60, what="the restarted w1")
    assert slots(daemon)["w1"]["key"] != before["key"] and slots(daemon)["w1"]["pid"] != before["pid"]
    assert worker_labels(daemon) == ids  # no new series per restart
    assert len(list((daemon.workdir / "run").glob("*.sock"))) == 2  # the predecessors' sockets are gone
    # Positive control for the lookup: an unknown slot is still a 404 naming the known ones.
    result = run_cli(daemon, "restart", "--worker", "w9")
    assert result.returncode == 1 and "no worker 'w9'" in result.stderr, result.stderr


def test_sigstopped_worker_is_killed_at_once_and_replaced_in_its_slot(start_daemon):
    # A kill grace far above hung detection: TERM then KILL would show up as "did not exit 30s after TERM".
    daemon = start_daemon({"workers": {"kill_grace_s": 30}}, workers=2)
    victim = slots(daemon)["w2"]
    os.kill(victim["pid"], signal.SIGSTOP)
    try:
        daemon.wait_until(lambda: (slots(daemon)["w2"]["last_exit_reason"] or "").startswith("hung"), 60, 0.1,
                          what="hung detection")
        daemon.wait_until(lambda: all_ready(daemon, {"w1", "w2"}), 60, what="the restart in slot w2")
    finally:
        try:
            os.kill(victim["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    row = slots(daemon)["w2"]
    assert row["last_exit_code"] == -signal.SIGKILL and row["pid"] != victim["pid"] and row["restarts"] == 1
    log = daemon.log()
    assert f"[worker=w2 pid={victim['pid']}] KILL at once (hung: no TERM grace)" in log
    assert "after TERM" not in log
    assert slots(daemon)["w1"]["pid"] and slots(daemon)["w1"]["restarts"] == 0  # the other slot was left alone
