"""Front-end benchmark: what the supervisor daemon adds on top of the workers, and how fast it heals.

    python bench/frontend.py [--requests N] [--concurrency C] [--throughput-requests M] [--kills K]

Starts a real ``tts-ops serve`` (2 workers, free loopback ports, temporary state/runtime/log dirs, the bundled
model from the machine's model store, audio cache disabled so every request is synthesised), then measures:

1. latency added by the front end: POST /tts through the daemon vs POST /synthesize straight to one worker's Unix
   socket, same short sentence, sequential and interleaved, N requests each (median, p95, difference);
2. throughput: requests/s on 2 workers with C concurrent aiohttp clients, M requests in all;
3. self-healing: ``kill -9`` of a worker until its replacement is READY, polled on the admin API every 20 ms,
   K times (each split into: exit noticed, respawned after the restart backoff, READY), and the median.

Stops the daemon with SIGTERM at the end. A script, not a test: it prints figures and judges nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import yaml

SENTENCE = "欢迎使用语音合成服务。"
POLL_S = 0.02


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


class Daemon:
    """A ``tts-ops serve`` subprocess in its own temporary directory."""

    def __init__(self, workers: int) -> None:
        from inference.models.store import default_store_dir

        self.workdir = Path(tempfile.mkdtemp(prefix="ttsbench-", dir="/tmp"))  # short: Unix socket paths
        self.port, self.admin_port = free_port(), free_port()
        self.runtime_dir = self.workdir / "run"
        self.token_file = self.workdir / "state" / "admin.token"
        self.log_path = self.workdir / "daemon.log"
        self.workers = workers
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.config = {
            "server": {"host": "127.0.0.1", "port": self.port},
            "admin": {"host": "127.0.0.1", "port": self.admin_port},
            "workers": {"count": workers},
            "cache": {"enabled": False},  # measure synthesis, not cache hits of the repeated sentence
            "logging": {"dir": str(self.workdir / "logs")}, "output": {"dir": str(self.workdir / "output")},
            "paths": {"state_dir": str(self.workdir / "state"), "runtime_dir": str(self.runtime_dir)},
        }
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TTS_OPS_", "NOTIFY_SOCKET", "WATCHDOG_"))}
        self.env["TTS_OPS_MODEL_DIR"] = str(default_store_dir())
        self.proc: subprocess.Popen | None = None
        self.token = ""

    def start(self) -> None:
        config_path = self.workdir / "tts-ops.yaml"
        config_path.write_text(yaml.safe_dump(self.config))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "tts_ops.cli", "serve", "--config", str(config_path)],
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir)

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise SystemExit(f"daemon exited ({self.proc and self.proc.returncode}); log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 60) -> tuple[int | None, float]:
        if self.proc is None:
            return None, 0.0
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        return code, time.monotonic() - start

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


async def wait_until(daemon: Daemon, predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        daemon.check_alive()
        try:
            value = await predicate()
        except (aiohttp.ClientError, OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        await asyncio.sleep(POLL_S)
    raise SystemExit(f"timed out after {timeout:g}s waiting for {what}; log:\n{daemon.log_tail()}")


async def status(session: aiohttp.ClientSession, daemon: Daemon) -> dict[str, Any]:
    async with session.get(daemon.admin_url + "/admin/status",
                           headers={"Authorization": f"Bearer {daemon.token}"}) as resp:
        resp.raise_for_status()
        return await resp.json()


async def post_audio(session: aiohttp.ClientSession, url: str, body: dict) -> tuple[float, dict[str, str]]:
    start = time.perf_counter()
    async with session.post(url, json=body) as resp:
        data = await resp.read()
        elapsed = time.perf_counter() - start
        if resp.status != 200 or not data:
            raise RuntimeError(f"POST {url} -> {resp.status}: {data[:200]!r}")
        return elapsed, dict(resp.headers)


# -- 1. added latency -----------------------------------------------------------------------------------------------
async def bench_latency(daemon: Daemon, admin: aiohttp.ClientSession, n: int) -> dict[str, Any]:
    from tts_ops.http.validation import parse_tts

    body = {"text": SENTENCE}
    job = parse_tts(body, max_text_chars=1000).job.to_wire()  # exactly what the front end sends the worker
    worker = next(w for w in (await status(admin, daemon))["workers"]["items"] if w["state"] == "ready")
    # w<slot>-<daemon pid>-<serial>.sock: the newest is the serving process's
    sock = max(daemon.runtime_dir.glob(f"{worker['id']}-*.sock"), key=lambda path: path.stat().st_mtime)
    through, direct, cache_hits = [], [], 0
    async with aiohttp.ClientSession() as front, \
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as back:
        for _ in range(3):  # warm both paths (connections, allocator, caches)
            await post_audio(front, daemon.base_url + "/tts", body)
            await post_audio(back, "http://worker/synthesize", job)
        for _ in range(n):  # interleaved, so drift (thermal, other load) hits both series alike
            elapsed, headers = await post_audio(front, daemon.base_url + "/tts", body)
            cache_hits += headers.get("X-Cache", "").upper() == "HIT"
            through.append(elapsed)
            direct.append((await post_audio(back, "http://worker/synthesize", job))[0])
        health = []
        for _ in range(n):
            start = time.perf_counter()
            async with front.get(daemon.base_url + "/health") as resp:
                await resp.read()
            health.append(time.perf_counter() - start)
    return {"through": through, "direct": direct, "health": health, "worker": worker["id"], "cache_hits": cache_hits}


# -- 2. throughput --------------------------------------------------------------------------------------------------
async def bench_throughput(daemon: Daemon, total: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    by_worker: dict[str, int] = {}
    remaining = total
    body = {"text": SENTENCE}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            async with session.post(daemon.base_url + "/tts", json=body) as resp:
                await resp.read()
                latencies.append(time.perf_counter() - start)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                worker = resp.headers.get("X-Worker", "-")
                by_worker[worker] = by_worker.get(worker, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(concurrency):  # warm-up, not counted
            async with session.post(daemon.base_url + "/tts", json=body) as resp:
                await resp.read()
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return {"wall": wall, "latencies": latencies, "statuses": statuses, "by_worker": by_worker, "total": total}


# -- 3. kill -9 to READY --------------------------------------------------------------------------------------------
async def bench_kill(daemon: Daemon, admin: aiohttp.ClientSession, kills: int) -> list[dict[str, Any]]:
    results = []
    for i in range(kills):
        await wait_until(daemon, lambda: _all_ready(admin, daemon), 120, "all workers ready before a kill")
        rows = (await status(admin, daemon))["workers"]["items"]
        victim = rows[i % len(rows)]
        old_pid, restarts = victim["pid"], victim["restarts"]
        killed = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)
        noticed = respawned = ready = None
        states: list[str] = []
        while ready is None:
            if time.monotonic() - killed > 120:
                raise SystemExit(f"worker {victim['id']} not back after 120 s; log:\n{daemon.log_tail()}")
            daemon.check_alive()
            row = next((r for r in (await status(admin, daemon))["workers"]["items"] if r["id"] == victim["id"]), None)
            now = time.monotonic() - killed
            if row is not None:
                if not states or states[-1] != row["state"]:
                    states.append(row["state"])
                if noticed is None and (row["pid"] != old_pid or row["state"] != "ready"):
                    noticed = now
                if respawned is None and row["pid"] not in (None, old_pid):
                    respawned = now
                if row["state"] == "ready" and row["pid"] not in (None, old_pid) and row["restarts"] > restarts:
                    ready = now
            await asyncio.sleep(POLL_S)
        results.append({"worker": victim["id"], "noticed": noticed, "respawned": respawned or ready, "ready": ready,
                        "states": states, "reason": row["last_exit_reason"]})
    return results


async def _all_ready(admin: aiohttp.ClientSession, daemon: Daemon) -> bool:
    workers = (await status(admin, daemon))["workers"]
    return workers["ready"] == workers["target"] == workers["total"]


# -- report ---------------------------------------------------------------------------------------------------------
def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    cells = enumerate(zip(header, widths, strict=True))
    print("  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in cells))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        cells = enumerate(zip(row, widths, strict=True))
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in cells))


def report(setup: dict, lat: dict, thr: dict, kills: list[dict], stopped: tuple[int | None, float]) -> None:
    print(f"\ntts-ops front-end benchmark — {setup['host']}")
    print(f"  daemon: 2 workers, engine {setup['engine']} ({setup['model_version']}), cache disabled, "
          f"restart backoff {setup['backoff']:g} s doubling per worker")
    print(f"  sentence: {SENTENCE!r} ({len(SENTENCE)} chars), started in {setup['boot_s']:.1f} s to 2/2 ready")

    t, d = lat["through"], lat["direct"]
    rows = [
        ["via daemon  POST /tts", ms(np.median(t)), ms(pct(t, 95)), ms(min(t)), str(len(t))],
        [f"direct      POST /synthesize ({lat['worker']}.sock)", ms(np.median(d)), ms(pct(d, 95)), ms(min(d)),
         str(len(d))],
        ["added by the front end", ms(np.median(t) - np.median(d)), ms(pct(t, 95) - pct(d, 95)),
         ms(min(t) - min(d)), ""],
        ["front end alone  GET /health", ms(np.median(lat["health"])), ms(pct(lat["health"], 95)),
         ms(min(lat["health"])), str(len(lat["health"]))],
    ]
    print_table("1. Latency, sequential, interleaved (ms)", ["path", "median", "p95", "min", "n"], rows)
    if lat["cache_hits"]:
        print(f"  WARNING: {lat['cache_hits']} responses were cache hits; the figures understate synthesis time")

    latencies = thr["latencies"]
    ok = thr["statuses"].get(200, 0)
    rows = [[f"{thr['total']} x POST /tts, concurrency {setup['concurrency']}", f"{ok / thr['wall']:.2f}",
             f"{thr['wall']:.2f}", ms(np.median(latencies)), ms(pct(latencies, 95)),
             ", ".join(f"{k}:{v}" for k, v in sorted(thr["statuses"].items())),
             ", ".join(f"{k}:{v}" for k, v in sorted(thr["by_worker"].items()))]]
    print_table("2. Throughput on 2 workers", ["load", "req/s", "wall s", "median ms", "p95 ms", "statuses",
                                               "per worker"], rows)
    single = np.median(d)
    print(f"  (one worker, sequential, direct: {1 / single:.2f} req/s; {os.cpu_count()} CPUs on this machine)")

    rows = [[f"#{i + 1} {k['worker']}", f"{k['noticed']:.3f}", f"{k['respawned']:.3f}", f"{k['ready']:.3f}",
             " > ".join(k["states"]), k["reason"] or "-"] for i, k in enumerate(kills)]
    rows.append(["median", f"{np.median([k['noticed'] for k in kills]):.3f}",
                 f"{np.median([k['respawned'] for k in kills]):.3f}", f"{np.median([k['ready'] for k in kills]):.3f}",
                 "", ""])
    print_table("3. kill -9 of a worker until its replacement is READY (s, admin API polled every 20 ms)",
                ["kill", "noticed", "respawned", "READY", "states seen", "exit reason"], rows)
    print("  noticed = left READY in the admin status; respawned = new pid (after the restart backoff); "
          "READY = new process answered /health ready")

    code, seconds = stopped
    print(f"\nSIGTERM: daemon exited with {code} after {seconds:.2f} s")


async def run(args: argparse.Namespace) -> None:
    daemon = Daemon(workers=2)
    started = time.monotonic()
    daemon.start()
    stopped: tuple[int | None, float] = (None, 0.0)
    try:
        async with aiohttp.ClientSession() as admin:
            await wait_until(daemon, lambda: _token(daemon), 30, "the admin token")
            await wait_until(daemon, lambda: _all_ready(admin, daemon), 120, "2 ready workers")
            boot_s = time.monotonic() - started
            st = await status(admin, daemon)
            model_version = next((w["model_version"] for w in st["workers"]["items"] if w["model_version"]), "?")
            setup = {"host": f"{platform.node()} ({platform.machine()}, Python {platform.python_version()})",
                     "engine": st["engine"], "model_version": model_version, "boot_s": boot_s,
                     "concurrency": args.concurrency, "backoff": _backoff()}
            print(f"daemon up in {boot_s:.1f} s; measuring ...", flush=True)
            lat = await bench_latency(daemon, admin, args.requests)
            thr = await bench_throughput(daemon, args.throughput_requests, args.concurrency)
            kills = await bench_kill(daemon, admin, args.kills)
        stopped = daemon.stop()
        report(setup, lat, thr, kills, stopped)
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()
        if args.keep:
            print(f"\nkept {daemon.workdir} (daemon log: {daemon.log_path})")
        else:
            daemon.cleanup()


async def _token(daemon: Daemon) -> bool:
    if daemon.token_file.is_file() and daemon.token_file.read_text().strip():
        daemon.token = daemon.token_file.read_text().strip()
        return True
    return False


def _backoff() -> float:
    from tts_ops.config import Config

    return Config().workers.backoff_initial_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="sequential requests per path for latency (50)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients for throughput (4)")
    parser.add_argument("--throughput-requests", type=int, default=100, help="requests in the throughput run (100)")
    parser.add_argument("--kills", type=int, default=3, help="kill -9 measurements (3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and daemon log")
    args = parser.parse_args()
    if min(args.requests, args.concurrency, args.throughput_requests, args.kills) < 1:
        parser.error("all counts must be at least 1")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
