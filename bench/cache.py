"""Benchmark of the result cache (tts_ops.cache): latency and throughput of get hit / get miss / put.

Runs standalone (``python bench/cache.py``), on one asyncio loop like the daemon: for the in-process LRU and
for Redis over loopback TCP (a private ``redis-server`` on a free port, no persistence, stopped at the end), it
times N operations of each kind with C concurrent tasks on a 100 KB item, through the public ``ResultCache``
API (envelope encoding and counters included), and prints median / p95 latency per operation and ops/s.

With ``--service`` it also measures the whole path through a real ``tts-ops serve`` (2 workers): latency and
requests/s of POST /tts cache MISSes (distinct texts, synthesized) versus HITs (the same texts again), with the
in-process cache and with Redis.

    python bench/cache.py [--n 2000] [--concurrency 16] [--size 102400] [--service]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

import redis

from tts_ops.cache import CachedAudio, ResultCache, cache_key
from tts_ops.config import CacheConfig

DISTINCT_HIT_KEYS = 64   # hits rotate over a few keys, like popular phrases


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(workdir: str) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found on PATH")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir, "--loglevel", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.02)
    proc.kill()
    sys.exit("redis-server did not start")


def key(name: str, i: int) -> str:
    return cache_key("bench:", engine="fastspeech2-baker", model_version="bench", voice="baker",
                     emotion="neutral", speed=1.0, fmt="wav", sample_rate=22050, text=f"{name} 第{i}句")


async def measure(n: int, concurrency: int, op: Callable[[int], Awaitable[object]]) -> tuple[list[float], float]:
    """Run op(0..n-1) with ``concurrency`` tasks; per-call latencies (s) and wall time (s)."""
    latencies: list[float] = []
    next_index = iter(range(n))

    async def worker() -> None:
        for i in next_index:   # shared iterator: each index taken once
            started = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return latencies, time.perf_counter() - started


async def bench_backend(label: str, cfg: CacheConfig, n: int, concurrency: int, size: int) -> list[tuple]:
    cache = ResultCache.from_config(cfg)
    await cache.start()
    if not cache.up:
        sys.exit(f"{label}: cache backend not up")
    audio = CachedAudio(data=os.urandom(size), content_type="audio/wav", sample_rate=22050, duration_s=size / 44100,
                        meta={"engine": "fastspeech2-baker", "model_version": "bench", "worker": "w1",
                              "synthesis_s": 0.5})
    for i in range(DISTINCT_HIT_KEYS):
        assert await cache.put(key("hit", i), audio)

    async def get_hit(i: int) -> None:
        if await cache.get(key("hit", i % DISTINCT_HIT_KEYS)) is None:
            raise AssertionError("expected a hit")

    async def get_miss(i: int) -> None:
        if await cache.get(key("miss", i)) is not None:
            raise AssertionError("expected a miss")

    async def put(i: int) -> None:
        if not await cache.put(key("put", i), audio):
            raise AssertionError("put skipped")

    rows = []
    for name, op in (("get hit", get_hit), ("get miss", get_miss), ("put", put)):
        await measure(min(200, n), concurrency, op)      # warm-up: connections, allocator
        latencies, wall = await measure(n, concurrency, op)
        latencies.sort()
        rows.append((label, name, statistics.median(latencies) * 1e3,
                     latencies[int(0.95 * (len(latencies) - 1))] * 1e3, n / wall))
    stats = cache.stats()
    if stats["errors"] or stats["bypassed"] or stats["skipped_busy"]:
        print(f"warning: {label}: errors={stats['errors']} bypassed={stats['bypassed']} "
              f"skipped_busy={stats['skipped_busy']}", file=sys.stderr)
    await cache.purge()
    await cache.close()
    return rows


SERVICE_TEXTS = [f"第{i}条缓存基准测试语句，内容各不相同，长度和常见请求差不多。" for i in range(60)]


async def bench_service(label: str, cache_cfg: dict, concurrency: int) -> list[tuple]:
    """MISS vs HIT through the daemon: sequential latency, then requests/s at ``concurrency``."""
    import aiohttp

    sys.path.insert(0, os.path.dirname(__file__))
    from frontend import Daemon, wait_until  # the front-end bench's daemon launcher

    daemon = Daemon(workers=2)
    daemon.config["cache"] = cache_cfg
    daemon.start()
    rows = []
    try:
        async with aiohttp.ClientSession() as session:
            async def ready():
                async with session.get(daemon.base_url + "/ready") as resp:
                    return resp.status == 200 and (await resp.json())["workers"]["ready"] == 2
            await wait_until(daemon, ready, 120, "2 ready workers")

            async def post(text: str) -> tuple[float, str]:
                start = time.perf_counter()
                async with session.post(daemon.base_url + "/tts", json={"text": text}) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                    return time.perf_counter() - start, resp.headers.get("X-Cache", "?")

            for kind, texts in (("MISS", SERVICE_TEXTS[:30]), ("HIT", SERVICE_TEXTS[:30])):
                lat = [await post(t) for t in texts]
                assert {c for _, c in lat} == {kind}, {c for _, c in lat}
                rows.append((label, f"{kind} sequential", [x for x, _ in lat], None))
            for kind, texts in (("MISS", SERVICE_TEXTS[30:]), ("HIT", SERVICE_TEXTS[30:] * 10)):
                queue = list(texts)
                lat: list[float] = []
                start = time.perf_counter()

                async def client(queue: list[str], lat: list[float]) -> None:
                    while queue:
                        elapsed, _ = await post(queue.pop())
                        lat.append(elapsed)
                await asyncio.gather(*(client(queue, lat) for _ in range(concurrency)))
                rows.append((label, f"{kind} x{concurrency} clients", lat, len(lat) / (time.perf_counter() - start)))
    finally:
        daemon.stop()
        daemon.cleanup()
    return rows


def print_service(rows: list[tuple]) -> None:
    print("\nthrough the daemon: POST /tts (2 workers, 2 CPUs shared with the client)")
    print(f"{'cache':<10} {'requests':<22} {'median ms':>10} {'p95 ms':>9} {'req/s':>8} {'n':>5}")
    for label, what, lat, rate in rows:
        lat = sorted(lat)
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        rate_s = f"{rate:8.1f}" if rate else f"{len(lat) / sum(lat):8.1f}"
        print(f"{label:<10} {what:<22} {statistics.median(lat) * 1000:10.2f} {p95 * 1000:9.2f} {rate_s} {len(lat):5d}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="operations per measurement (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent tasks (default 16)")
    parser.add_argument("--size", type=int, default=100 * 1024, help="audio bytes per item (default 102400)")
    parser.add_argument("--service", action="store_true", help="also measure HIT vs MISS through a real daemon")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="ttsbench-", dir="/tmp")
    proc, port = start_redis(workdir)
    try:
        banner = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
        version = banner[2].removeprefix("v=")
        print(f"python {platform.python_version()}, redis-py {redis.__version__}, redis-server {version}, "
              f"{os.cpu_count()} CPUs; N={args.n}, concurrency={args.concurrency}, item={args.size} bytes")
        # Budget large enough that the put run (N distinct items) measures inserts, not evictions.
        budget = (args.n + 2 * DISTINCT_HIT_KEYS + 400) * (args.size + 1024)
        common = dict(prefix="bench:", max_item_bytes=max(args.size * 2, 1024 * 1024))
        rows = await bench_backend("memory", CacheConfig(memory_max_bytes=budget, **common),
                                   args.n, args.concurrency, args.size)
        rows += await bench_backend("redis tcp", CacheConfig(redis_url=f"redis://127.0.0.1:{port}/0", **common),
                                    args.n, args.concurrency, args.size)
        service_rows = []
        if args.service:
            service_rows += await bench_service("memory", {"enabled": True}, 4)
            redis_cache = {"enabled": True, "redis_url": f"redis://127.0.0.1:{port}/1"}
            service_rows += await bench_service("redis", redis_cache, 4)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'backend':<10} {'op':<9} {'median ms':>10} {'p95 ms':>8} {'ops/s':>9}")
    for label, name, median, p95, rate in rows:
        print(f"{label:<10} {name:<9} {median:>10.3f} {p95:>8.3f} {rate:>9.0f}")
    if service_rows:
        print_service(service_rows)


if __name__ == "__main__":
    asyncio.run(main())
