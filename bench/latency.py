"""Latency of one client at low load: 10 / 150 / 1,000-character texts, non-streamed POST /tts (WAV), against a
daemon with 1 and 2 workers and a plain gunicorn + Flask app (``-w 2``, bench/gunicorn_app.py) on the same engine,
in the same run.

    python bench/latency.py [--repeat 5] [--chars 10 150 1000] [--parallel on|off|both]

Method: each server is started in turn on free loopback ports (the daemon with its audio cache off so every request
is synthesized; ``server.parallel_long_text`` on, and off with ``--parallel both`` for the before figure), warmed with
two requests, then one client sends each text ``--repeat`` times, sequentially, interleaving the lengths; p50 and
min of the wall time from request to the last byte. The texts are cut from one fixed paragraph (bench/engine.py's
``text_of_length``). Servers and client share the machine's CPUs; nothing else of this script runs meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import text_of_length
from frontend import Daemon, free_port

ROOT = Path(__file__).resolve().parent.parent


def post(url: str, text: str) -> float:
    data = json.dumps({"text": text, "format": "wav"}).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as resp:
        body = resp.read()
    elapsed = time.perf_counter() - start
    if resp.status != 200 or body[:4] != b"RIFF":
        raise SystemExit(f"POST {url} -> {resp.status}")
    return elapsed


def wait_health(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not healthy after {timeout}s")


def measure(url: str, texts: dict[int, str], repeat: int) -> dict[int, list[float]]:
    for _ in range(2):
        post(url + "/tts", texts[min(texts)])
    times: dict[int, list[float]] = {chars: [] for chars in texts}
    for _ in range(repeat):
        for chars, text in texts.items():
            times[chars].append(post(url + "/tts", text))
    return times


def run_daemon(workers: int, parallel: bool, texts: dict[int, str], repeat: int) -> dict[int, list[float]]:
    daemon = Daemon(workers)
    daemon.config["server"]["parallel_long_text"] = parallel
    daemon.start()
    try:
        assert daemon.proc is not None
        wait_health(daemon.base_url, daemon.proc)
        time.sleep(1.0)  # every worker READY, not just the first
        return measure(daemon.base_url, texts, repeat)
    finally:
        daemon.stop()
        daemon.cleanup()


def run_gunicorn(texts: dict[int, str], repeat: int) -> dict[int, list[float]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TTS_BENCH_PRELOAD": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout",
                             "300", "bench.gunicorn_app:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_health(url, proc)
        time.sleep(5.0)  # both workers preload the engine at import; the health answer came from the first
        return measure(url, texts, repeat)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def versions() -> str:
    from importlib.metadata import version

    from tts_vocab.engines import FASTSPEECH2_BAKER

    return (f"Python {platform.python_version()}, gunicorn {version('gunicorn')}, Flask {version('flask')}; "
            f"engine {FASTSPEECH2_BAKER.id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="requests per text and server (5)")
    parser.add_argument("--chars", type=int, nargs="+", default=[10, 150, 1000], help="text lengths (10 150 1000)")
    parser.add_argument("--parallel", choices=("on", "off", "both"), default="both",
                        help="server.parallel_long_text of the daemons (both: off = before, on = after)")
    args = parser.parse_args()
    texts = {chars: text_of_length(chars) for chars in args.chars}
    rows: list[tuple[str, dict[int, list[float]]]] = []
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.parallel]
    rows.append(("gunicorn + Flask -w 2", run_gunicorn(texts, args.repeat)))
    for parallel in modes:
        for workers in (1, 2):
            label = f"tts-ops {workers} worker{'s' if workers > 1 else ''}, parallel {'on' if parallel else 'off'}"
            rows.append((label, run_daemon(workers, parallel, texts, args.repeat)))
    report(args, rows)


def report(args: argparse.Namespace, rows: list[tuple[str, dict[int, list[float]]]]) -> None:
    print(f"latency of 1 client, non-streamed POST /tts wav - {platform.node()} ({platform.machine()}, "
          f"{psutil.cpu_count()} CPUs), load average {os.getloadavg()[0]:.2f} at the end")
    print(f"  {versions()}; {args.repeat} requests per text and server, sequential, lengths interleaved")
    print()
    header = "  " + f"{'server':<36}" + "".join(f"{f'{c} chars p50 s':>17}{'min s':>8}" for c in args.chars)
    print(header)
    base = dict(rows)["gunicorn + Flask -w 2"]
    for label, times in rows:
        line = f"  {label:<36}" + "".join(f"{statistics.median(times[c]):17.3f}{min(times[c]):8.3f}"
                                           for c in args.chars)
        print(line)
    print()
    print("  p50 relative to gunicorn + Flask in the same run (below 1 is faster):")
    for label, times in rows[1:]:
        ratios = "".join(f"{f'{c} chars':>12} x{statistics.median(times[c]) / statistics.median(base[c]):.2f}"
                         for c in args.chars)
        print(f"  {label:<36}{ratios}")


if __name__ == "__main__":
    main()
