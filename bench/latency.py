"""Latency of one client at low load: 10 / 150 / 1,000-character texts, non-streamed POST /tts (WAV), against a
daemon with 1 and 2 workers and a plain gunicorn + Flask app (``-w 2``, bench/gunicorn_app.py) on the same engine
and settings, in the same run.

    python bench/latency.py [--repeat 5] [--chars 10 150 1000] [--parallel on|off|both] [--before CHECKOUT]

Method: every server is started first, side by side on free loopback ports (the daemons with their audio cache off
so every request is synthesized; ``server.parallel_long_text`` on, and off with ``--parallel both`` for the before
figure), and each is warmed with two requests once all its workers are READY. Then one client sends, ``--repeat``
rounds over, each text to every server in turn (the servers' order rotating by round), sequentially: the servers
are compared in the same minutes, so a change of the machine's load (it is shared) hits them alike. An idle server
costs next to nothing meanwhile (its health probes). p50 and min of the wall time from request to the last byte;
the ratio to gunicorn + Flask is of the p50s, and beside it the median of the per-round ratios (each a pair of
requests sent back to back). ``--before`` adds the daemons of another checkout of tts-ops (e.g. a worktree of the
commit before a change), run side by side with this one's, labelled "before". The texts are cut from one fixed
paragraph (bench/engine.py's ``text_of_length``). Servers and client share the machine's CPUs; nothing else of this
script runs meanwhile.
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
GUNICORN = "gunicorn + Flask -w 2"


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


def warm(url: str, texts: dict[int, str]) -> None:
    for _ in range(2):
        post(url + "/tts", texts[min(texts)])


def measure(servers: dict[str, str], texts: dict[int, str], repeat: int) -> dict[str, dict[int, list[float]]]:
    """Per server label, per text length, the wall times of ``repeat`` rounds (see the module docstring)."""
    times: dict[str, dict[int, list[float]]] = {label: {chars: [] for chars in texts} for label in servers}
    labels = list(servers)
    for round_ in range(repeat):
        for chars, text in texts.items():
            shift = round_ % len(labels)
            for label in labels[shift:] + labels[:shift]:
                times[label][chars].append(post(servers[label] + "/tts", text))
    return times


def start_daemon(workers: int, parallel: bool, checkout: Path | None = None) -> Daemon:
    daemon = Daemon(workers)
    daemon.config["server"]["parallel_long_text"] = parallel
    if checkout is not None:  # that checkout's code, not the installed package nor this one
        daemon.env["PYTHONPATH"] = str(checkout)
    daemon.start()
    return daemon


def wait_ready(daemon: Daemon, timeout: float = 180) -> None:
    """Every worker READY, not just the first (``/ready`` counts them)."""
    assert daemon.proc is not None
    wait_health(daemon.base_url, daemon.proc, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(daemon.base_url + "/ready", timeout=2) as resp:
                if json.loads(resp.read())["workers"]["ready"] >= daemon.workers:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{daemon.base_url}: not every worker READY after {timeout}s")


def start_gunicorn() -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TTS_BENCH_PRELOAD": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout",
                             "300", "bench.gunicorn_app:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def run(modes: list[bool], texts: dict[int, str], repeat: int,
        before: Path | None = None) -> dict[str, dict[int, list[float]]]:
    """Every server started, warmed, measured side by side, stopped."""
    daemons: dict[str, Daemon] = {}
    gunicorn, gunicorn_url = start_gunicorn()
    try:
        for checkout in ([before] if before is not None else []) + [None]:
            for parallel in modes:
                for workers in (1, 2):
                    label = (f"tts-ops {workers} worker{'s' if workers > 1 else ''}, parallel "
                             f"{'on' if parallel else 'off'}{', before' if checkout is not None else ''}")
                    daemons[label] = start_daemon(workers, parallel, checkout)
        wait_health(gunicorn_url, gunicorn)
        for daemon in daemons.values():
            wait_ready(daemon)
        time.sleep(5.0)  # gunicorn's workers preload the engine at import; the health answer came from the first
        servers = {GUNICORN: gunicorn_url, **{label: daemon.base_url for label, daemon in daemons.items()}}
        for url in servers.values():
            warm(url, texts)
        return measure(servers, texts, repeat)
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(30)
        for daemon in daemons.values():
            daemon.stop()
            daemon.cleanup()


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
    parser.add_argument("--before", type=Path, default=None,
                        help="also run the daemons of this checkout of tts-ops, side by side (labelled before)")
    args = parser.parse_args()
    texts = {chars: text_of_length(chars) for chars in args.chars}
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.parallel]
    load_before = os.getloadavg()[0]
    rows = run(modes, texts, args.repeat, args.before)
    report(args, rows, load_before)


def report(args: argparse.Namespace, rows: dict[str, dict[int, list[float]]], load_before: float) -> None:
    print(f"latency of 1 client, non-streamed POST /tts wav - {platform.node()} ({platform.machine()}, "
          f"{psutil.cpu_count()} CPUs), load average {load_before:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end")
    print(f"  {versions()}; {args.repeat} rounds, each text to every server in turn, sequential")
    print()
    header = "  " + f"{'server':<40}" + "".join(f"{f'{c} chars p50 s':>17}{'min s':>8}" for c in args.chars)
    print(header)
    base = rows[GUNICORN]
    for label, times in rows.items():
        line = f"  {label:<40}" + "".join(f"{statistics.median(times[c]):17.3f}{min(times[c]):8.3f}"
                                           for c in args.chars)
        print(line)
    print()
    print("  relative to gunicorn + Flask in the same run (below 1 is faster): ratio of p50s (median of per-round"
          " ratios)")
    for label, times in rows.items():
        if label == GUNICORN:
            continue
        ratios = "".join(
            f"{f'{c} chars':>12} x{statistics.median(times[c]) / statistics.median(base[c]):.2f}"
            f" (x{statistics.median(t / b for t, b in zip(times[c], base[c], strict=True)):.2f})"
            for c in args.chars)
        print(f"  {label:<40}{ratios}")


if __name__ == "__main__":
    main()
