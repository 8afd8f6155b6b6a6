"""Front-end CPU benchmark: wrk against a cache HIT (POST /tts) and GET /health of a real daemon, beside nginx
serving the same bytes on the same machine in the same run, as ratios.

    python bench/frontend_wrk.py [--duration 5] [--connections 8] [--event-loop auto|asyncio|uvloop]
                                 [--workers 1] [--repeat 3]

Method: starts ``tts-ops serve`` (memory cache on, ``--workers`` workers, ``server.event_loop`` as given), fills the
cache with one sentence (MISS) and checks the next answer is a HIT. nginx (one worker process, access log off)
serves the same HIT body at ``/tts`` (POST through ``error_page 405 =200``) and the same ``/health`` body. For
each target wrk (1 thread, ``--connections`` keep-alive connections, ``--duration`` s) runs ``--repeat`` times; the
server's CPU time (user + system of the daemon process only, not its workers; of nginx's master and worker) is read
from /proc before and after each run. CPU per request = CPU seconds / requests wrk completed; the median run is
printed. wrk and the server share the machine's CPUs, so req/s is bounded by both; CPU per request is the figure
that compares the front ends. The daemon's access log is on (its INFO level, as in production).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frontend import Daemon, free_port

SENTENCE = "欢迎使用语音合成服务。"
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /tts {{ default_type application/octet-stream; root {dir}/www; try_files /hit.wav =404;
                          error_page 405 =200 /hit.wav; }}
        location = /hit.wav {{ default_type audio/wav; root {dir}/www; }}
        location = /health {{ default_type application/json; root {dir}/www; try_files /health.json =404; }}
    }}
}}
"""
POST_LUA = 'wrk.method = "POST"\nwrk.body = {body}\nwrk.headers["Content-Type"] = "application/json"\n'


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return resp.status, dict(resp.headers), resp.read()


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def wrk(url: str, seconds: float, connections: int, script: Path | None) -> tuple[int, float]:
    """(requests completed, requests/s) of one wrk run; non-2xx answers fail the bench."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return requests, rate


def measure(url: str, pids: list[int], args: argparse.Namespace, script: Path | None) -> dict[str, float]:
    wrk(url, 1, args.connections, script)  # warm-up: connections, caches, the allocator
    runs = []
    for _ in range(args.repeat):
        before = cpu_seconds(pids)
        requests, rate = wrk(url, args.duration, args.connections, script)
        cpu = cpu_seconds(pids) - before
        runs.append({"rate": rate, "cpu_ms": cpu * 1000 / max(1, requests), "cpu_share": cpu / args.duration})
    return sorted(runs, key=lambda run: run["cpu_ms"])[len(runs) // 2]


def start_nginx(workdir: Path, hit: bytes, health: bytes) -> tuple[subprocess.Popen, int]:
    www = workdir / "www"
    www.mkdir(parents=True)
    workdir.chmod(0o755)  # nginx's worker process may run as another user (nobody)
    (www / "hit.wav").write_bytes(hit)
    (www / "health.json").write_bytes(health)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    proc = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            http("GET", f"http://127.0.0.1:{port}/health")
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    proc.wait(10)
    raise SystemExit(f"nginx did not answer on port {port}; see {workdir}/error.log")


def versions() -> str:
    import aiohttp

    try:
        import uvloop

        uv = uvloop.__version__
    except ImportError:
        uv = "not installed"
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    return f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, uvloop {uv}; {wrk_v}; {nginx_v}"


def run(args: argparse.Namespace) -> None:
    daemon = Daemon(args.workers)
    daemon.config["cache"] = {"enabled": True}
    daemon.config["server"]["event_loop"] = args.event_loop
    nginx_dir = Path(tempfile.mkdtemp(prefix="ttsnginx-", dir="/tmp"))
    nginx = None
    try:
        daemon.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            daemon.check_alive()
            try:
                if http("GET", daemon.base_url + "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        body = {"text": SENTENCE, "format": args.format}
        http("POST", daemon.base_url + "/tts", body)
        _, headers, hit = http("POST", daemon.base_url + "/tts", body)
        assert headers.get("X-Cache") == "HIT", headers
        _, _, health = http("GET", daemon.base_url + "/health")
        nginx, nginx_port = start_nginx(nginx_dir, hit, health)
        nginx_pids = [nginx.pid] + [child.pid for child in psutil.Process(nginx.pid).children()]
        script = nginx_dir / "post.lua"
        script.write_text(POST_LUA.format(body=json.dumps(json.dumps(body, ensure_ascii=False), ensure_ascii=False)))
        loop = "?"
        match = re.search(r"event loop: (\S+)", daemon.log_tail(100000))
        if match:
            loop = match.group(1)
        results = {}
        for name, path, use_script in (("cache hit POST /tts", "/tts", True), ("GET /health", "/health", False)):
            results[name] = (measure(daemon.base_url + path, [daemon.proc.pid], args, script if use_script else None),
                             measure(f"http://127.0.0.1:{nginx_port}{path}", nginx_pids, args,
                                     script if use_script else None))
        report(args, loop, len(hit), results)
    finally:
        daemon.stop()
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        if not args.keep:
            daemon.cleanup()
            shutil.rmtree(nginx_dir, ignore_errors=True)


def report(args: argparse.Namespace, loop: str, hit_bytes: int, results: dict) -> None:
    print(f"tts-ops front-end CPU (wrk) - {platform.node()} ({platform.machine()}, {psutil.cpu_count()} CPUs)")
    print(f"  {versions()}")
    print(f"  daemon: {args.workers} worker(s), memory cache, event loop {loop} (server.event_loop={args.event_loop}), "
          f"access log on; nginx: 1 worker process, access log off")
    print(f"  wrk -t1 -c{args.connections} -d{args.duration:g}s, median of {args.repeat} by CPU per request; "
          f"hit body {hit_bytes} bytes")
    print()
    print(f"  {'target':<22} {'server':<7} {'req/s':>9} {'CPU ms/req':>11} {'CPU share':>10}")
    for name, (ours, theirs) in results.items():
        for server, run in (("tts-ops", ours), ("nginx", theirs)):
            print(f"  {name:<22} {server:<7} {run['rate']:9.0f} {run['cpu_ms']:11.4f} {run['cpu_share']:10.2f}")
        print(f"  {'':<22} {'ratio':<7} {ours['rate'] / theirs['rate']:9.3f} "
              f"{ours['cpu_ms'] / theirs['cpu_ms']:11.1f}x")
    print("  ratio: tts-ops / nginx (req/s: below 1 is slower; CPU: how many times nginx's CPU per request)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (5)")
    parser.add_argument("--connections", type=int, default=8, help="wrk keep-alive connections (8)")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per target; the median is printed (3)")
    parser.add_argument("--workers", type=int, default=1, help="daemon workers (1; hits never reach them)")
    parser.add_argument("--event-loop", default="auto", choices=("auto", "asyncio", "uvloop"),
                        help="server.event_loop of the daemon (auto)")
    parser.add_argument("--format", default="wav", help="format of the cached answer (wav: 122 kB; opus: small)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
