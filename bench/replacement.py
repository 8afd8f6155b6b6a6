"""Benchmark of worker replacement and memory per worker: cold spawns versus workers forked by the zygote.

Runs standalone (``python bench/replacement.py``) against real ``tts-ops serve`` daemons (the front-end bench's
launcher), one per mode, in the same run:

    before   workers.zygote false, first restart after 0.5 s, then 1 s (the policy before the zygote)
    cold     workers.zygote false, first restart at once (the fallback while the zygote is down)
    zygote   workers.zygote true (the default)

Method, per mode: time from launch to N workers READY (``/ready``); then ``--repeat`` times a *first* crash
(kill -9 of w1 after it has been ready longer than ``backoff_reset_s``, so the policy treats it as the first crash
after a healthy period) and a *repeated* crash (kill -9 again as soon as the successor is READY): the time until
the admin status shows a new pid in the slot, and until it shows it READY, polled every 20 ms. CPU s is the
successor's own CPU time when seen READY (independent of how busy the host is). Memory: RSS, PSS and USS of every
worker (and the zygote) after all are READY and idle, then after ``--requests`` requests spread over the workers
(USS of a worker = what one more worker costs; PSS sums to the pool's real footprint).

    python bench/replacement.py [--workers 2] [--repeat 3] [--requests 10] [--modes before cold zygote]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
import urllib.request
from typing import Any

import psutil

sys.path.insert(0, os.path.dirname(__file__))
from frontend import Daemon  # the front-end bench's daemon launcher

POLL_S = 0.02
RESET_S = 2.0  # backoff_reset_s in these daemons, so a first crash can be measured again after a short wait
MODES: dict[str, dict[str, Any]] = {
    "before": {"zygote": False, "first_restart_delay_s": 0.5, "backoff_initial_s": 1.0},
    "cold": {"zygote": False},
    "zygote": {"zygote": True},
}
TEXT = "今天天气真好，适合出去散步。我们明天上午十点开会，请准时参加。"
MIB = 1 << 20


def get(url: str, token: str = "") -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def post_tts(daemon: Daemon, text: str) -> None:
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(daemon.base_url + "/tts", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as resp:
        resp.read()


def status(daemon: Daemon) -> dict[str, Any]:
    if not daemon.token:
        daemon.token = daemon.token_file.read_text().strip()
    return get(daemon.admin_url + "/admin/status", daemon.token)


def slot(daemon: Daemon, worker_id: str) -> dict[str, Any]:
    return next(row for row in status(daemon)["workers"]["items"] if row["id"] == worker_id)


def poll(daemon: Daemon, predicate, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        daemon.check_alive()
        try:
            value = predicate()
        except (OSError, ValueError, KeyError, StopIteration):
            value = None
        if value:
            return value
        time.sleep(POLL_S)
    raise SystemExit(f"timed out after {timeout:g}s waiting for {what}; log:\n{daemon.log_tail()}")


def kill_and_time(daemon: Daemon, worker_id: str) -> tuple[float, float, float]:
    """kill -9 the slot's worker: (s to a new pid, s to READY, the successor's CPU s at READY)."""
    victim = slot(daemon, worker_id)["pid"]
    start = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    new_pid = poll(daemon, lambda: (p := slot(daemon, worker_id)["pid"]) not in (None, victim) and p, 120, "new pid")
    spawned = time.monotonic() - start
    poll(daemon, lambda: (r := slot(daemon, worker_id))["state"] == "ready" and r["pid"] == new_pid, 120, "READY")
    ready = time.monotonic() - start
    cpu = psutil.Process(new_pid).cpu_times()
    return spawned, ready, cpu.user + cpu.system


def memory(daemon: Daemon) -> list[tuple[str, float, float, float]]:
    """(name, RSS, PSS, USS in MiB) of every worker, and of the zygote when there is one."""
    current = status(daemon)
    procs = [(row["id"], row["pid"]) for row in current["workers"]["items"]]
    if current["workers"]["zygote"]["pid"]:
        procs.append(("zygote", current["workers"]["zygote"]["pid"]))
    rows = []
    for name, pid in procs:
        info = psutil.Process(pid).memory_full_info()
        rows.append((name, info.rss / MIB, info.pss / MIB, info.uss / MIB))
    return rows


def run_mode(mode: str, workers: int, repeat: int, requests: int) -> dict[str, Any]:
    daemon = Daemon(workers=workers)
    daemon.config["workers"].update(MODES[mode], probe_interval_s=0.5, probe_timeout_s=0.4, backoff_reset_s=RESET_S,
                                  crash_limit=100)  # the bench crashes w1 on purpose, often
    start = time.monotonic()
    daemon.start()
    try:
        poll(daemon, lambda: get(daemon.base_url + "/ready")["workers"]["ready"] >= workers, 300, "N ready")
        result: dict[str, Any] = {"start_s": time.monotonic() - start, "first": [], "repeated": []}
        time.sleep(1.0)  # let the last warm-up finish before the idle memory reading
        result["idle"] = memory(daemon)
        for _ in range(repeat):
            time.sleep(RESET_S + 1.5)  # a healthy period (the reset happens on a probe): the next crash is a first
            result["first"].append(kill_and_time(daemon, "w1"))
            result["repeated"].append(kill_and_time(daemon, "w1"))
        for i in range(requests):
            post_tts(daemon, f"{i}。{TEXT}")
        result["after"] = memory(daemon)
        return result
    finally:
        daemon.stop()
        daemon.cleanup()


def print_results(results: dict[str, dict[str, Any]], workers: int, requests: int) -> None:
    print(f"\n{workers} workers; kill -9 of w1, admin status polled every {POLL_S * 1000:.0f} ms; median (min-max)")
    print(f"{'mode':<8} {'N READY s':>9}  {'crash':<9} {'new pid s':>18} {'READY s':>18} {'CPU s':>6}")

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})"

    for mode, result in results.items():
        for kind in ("first", "repeated"):
            rows = result[kind]
            head = f"{mode:<8} {result['start_s']:9.2f}" if kind == "first" else f"{'':<8} {'':>9}"
            print(f"{head}  {kind:<9} {cell([r[0] for r in rows]):>18} {cell([r[1] for r in rows]):>18} "
                  f"{statistics.median([r[2] for r in rows]):6.2f}")
    for phase, title in (("idle", "idle, all READY"), ("after", f"after {requests} requests of {len(TEXT)} chars")):
        print(f"\nmemory MiB, {title}:")
        print(f"{'mode':<8} {'process':<8} {'RSS':>7} {'PSS':>7} {'USS':>7}")
        for mode, result in results.items():
            for name, rss, pss, uss in result[phase]:
                print(f"{mode:<8} {name:<8} {rss:7.0f} {pss:7.0f} {uss:7.0f}")
            total = sum(row[2] for row in result[phase])
            worker_uss = [row[3] for row in result[phase] if row[0] != "zygote"]
            print(f"{mode:<8} {'total':<8} {'':>7} {total:7.0f} {'':>7}   (PSS sum; worker USS median "
                  f"{statistics.median(worker_uss):.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="workers per daemon (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="first and repeated crashes per mode (default 3)")
    parser.add_argument("--requests", type=int, default=10, help="requests before the second memory reading")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs ({platform.machine()}), Linux {platform.release()}, "
          f"Python {platform.python_version()}, psutil {psutil.__version__}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    results = {mode: run_mode(mode, args.workers, args.repeat, args.requests) for mode in args.modes}
    print_results(results, args.workers, args.requests)
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
